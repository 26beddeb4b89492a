/**
 * Exit codes of `capydb`: scripts and CI branch on them, so they are part of the
 * interface and never change meaning.
 */
export const exitCodes = {
  ok: 0,
  error: 1,
  usage: 2,
  auth: 3,
  notFound: 4,
  conflict: 5,
  timeout: 6,
} as const;
export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

/** The CLI's one error class: a message that says what to do, and the exit code it maps to. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: ExitCode = exitCodes.error,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The exit code for an HTTP error status of the API. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return exitCodes.auth;
  if (status === 404) return exitCodes.notFound;
  if (status === 409) return exitCodes.conflict;
  if (status === 400 || status === 422) return exitCodes.usage;
  return exitCodes.error;
}
