import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { refusedAddress, type DestinationPolicy } from "./destination.ts";

export interface PostResult {
  /** The HTTP status, when the receiver answered. */
  status: number | null;
  /** The first `maxResponseBytes` of the response body (not redacted yet). */
  body: string;
  /** Why the attempt failed before a status, or why the status is not a success. */
  error: string | null;
  ok: boolean;
}

/**
 * One POST to a checked address: the connection goes to `address` (the address the caller
 * checked, never a fresh DNS answer) while the URL's host name stays in the Host header and TLS's
 * SNI and certificate check. The connected socket's peer address is checked again under `policy`
 * before the request is written (whatever resolved it, a refused peer gets nothing, not even the
 * headers). No redirect is followed (a 3xx is a failure), the whole exchange is
 * bounded by `timeoutMs`, and at most `maxResponseBytes` of the answer are read.
 */
export function postWebhook(opts: {
  url: URL;
  address: string;
  family: 4 | 6;
  policy: DestinationPolicy;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  maxResponseBytes: number;
}): Promise<PostResult> {
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all)
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: opts.address, family: opts.family }]);
    else callback(null, opts.address, opts.family);
  };
  const client = opts.url.protocol === "https:" ? https : http;
  return new Promise<PostResult>((resolve) => {
    let settled = false;
    const finish = (r: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = client.request(
      opts.url,
      {
        method: "POST",
        headers: { ...opts.headers, "content-length": String(Buffer.byteLength(opts.body)) },
        lookup: pinned,
        agent: false, // no pooled connection: every delivery connects to the address it checked
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () => {
          const body = Buffer.concat(chunks)
            .subarray(0, opts.maxResponseBytes)
            .toString("utf8")
            .replace(/\uFFFD+$/, "");
          const ok = status >= 200 && status < 300;
          const error = ok
            ? null
            : status >= 300 && status < 400
              ? `the receiver answered HTTP ${status} (a redirect${res.headers.location ? ` to ${res.headers.location.slice(0, 200)}` : ""}), which is not followed`
              : `the receiver answered HTTP ${status}`;
          finish({ status, body, error, ok });
        };
        res.on("data", (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size >= opts.maxResponseBytes) done();
        });
        res.on("end", done);
        res.on("error", done);
      },
    );
    const timer = setTimeout(() => finish({ status: null, body: "", error: `no answer within ${opts.timeoutMs / 1000} s`, ok: false }), opts.timeoutMs);
    req.on("socket", (socket) => {
      const checkPeer = () => {
        const peer = socket.remoteAddress;
        const why = peer ? refusedAddress(peer, opts.policy) : "the connection has no peer address";
        if (!why) return;
        socket.destroy();
        finish({ status: null, body: "", error: `refused: the connection went to ${why}`, ok: false });
      };
      // Prepended so that it runs before the request's own pending write on connect.
      if (socket.connecting) socket.prependOnceListener("connect", checkPeer);
      else checkPeer();
    });
    req.on("error", (err: NodeJS.ErrnoException) => finish({ status: null, body: "", error: `could not deliver: ${err.code ?? err.message}`, ok: false }));
    req.end(opts.body);
  });
}
