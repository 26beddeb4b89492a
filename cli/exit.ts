/**
 * Ends a CLI with `code` once stdout and stderr have handed everything written to them to the
 * other end. On a pipe, Node writes what the pipe takes (64 KiB) at once and queues the rest:
 * `process.exit` then would drop the queue, and `capydb backups list -o json | jq` would read a
 * cut-off document. The explicit exit after the wait still matters: an SDK's idle keep-alive
 * sockets must not hold the process open.
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  process.exitCode = code;
  await Promise.all([process.stdout, process.stderr].map(flushed));
  process.exit(code);
}

/** Resolves when `stream` has nothing queued, or cannot take more (the reader went away). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  const done = () => stream.writableLength === 0 || stream.destroyed || stream.errored !== null;
  if (done()) return Promise.resolve();
  // 'drain' is only promised after a write that returned false, so a short poll decides.
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (!done()) return;
      clearInterval(timer);
      resolve();
    }, 20);
  });
}
