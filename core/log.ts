import { Logger } from "@aws-lambda-powertools/logger";
import type { ConstructorOptions, LogAttributes } from "@aws-lambda-powertools/logger/types";
import type { Writable } from "node:stream";
import { ConfigError } from "./config.ts";
import { formatLogLine } from "./log-format.ts";

export type Log = Logger;
export type LogLevelName = "DEBUG" | "INFO" | "WARN" | "ERROR";

/**
 * How log events are written. `json`: one JSON line per event (CloudWatch, pipes, files), what
 * Lambda always uses. `auto`: one readable line per event on the streams that are terminals, JSON
 * lines on the others. `pretty`: readable lines everywhere. Readable lines are coloured where the
 * stream supports colour.
 */
export type LogFormat = "json" | "auto" | "pretty";

/**
 * The Powertools logger: one per process; add request/job ids with `createChild`. JSON lines unless
 * a local process asks for another format (`npm start` on a terminal).
 */
export function createLogger(level: LogLevelName = "INFO", serviceName = "capydb-backups", format: LogFormat = "json"): Log {
  if (format === "json") return new Logger({ serviceName, logLevel: level });
  return new TerminalLogger({ serviceName, logLevel: level }, format === "pretty" ? "always" : "tty");
}

type Readable = "always" | "tty";

/**
 * The same Powertools logger (levels, child loggers, persistent keys, redaction by the callers),
 * printing each event as one readable line instead of JSON where a person reads it. Events at WARN
 * and above go to stderr, the rest to stdout, exactly as the JSON logger's console does.
 */
class TerminalLogger extends Logger {
  readonly #readable: Readable;

  constructor(options: ConstructorOptions, readable: Readable) {
    super(options);
    this.#readable = readable;
  }

  protected override createLogger(options?: ConstructorOptions): Logger {
    return new TerminalLogger(options ?? {}, this.#readable);
  }

  protected override printLog(logLevel: number, log: Parameters<Logger["printLog"]>[1]): void {
    const stream = logLevel >= 16 ? process.stderr : process.stdout; // 16 = WARN
    if (this.#readable === "tty" && !isTerminal(stream)) {
      super.printLog(logLevel, log);
      return;
    }
    log.prepareForPrint();
    // Through the JSON replacer, so errors, bigints and cycles read as they do in the JSON line.
    const attributes = JSON.parse(JSON.stringify(log.getAttributes(), this.getJsonReplacer())) as LogAttributes;
    stream.write(`${formatLogLine(attributes, { color: supportsColor(stream) })}\n`);
  }
}

const isTerminal = (stream: Writable): boolean => (stream as { isTTY?: boolean }).isTTY === true;

/**
 * Colour when the stream supports it: Node's own rule on terminals (`hasColors()` honours
 * `FORCE_COLOR`, `NO_COLOR`, `NODE_DISABLE_COLORS` and `TERM=dumb`); elsewhere only with
 * `FORCE_COLOR` (set, and not `0` or `false`).
 */
export function supportsColor(stream: Writable, env: NodeJS.ProcessEnv = process.env): boolean {
  const tty = stream as { isTTY?: boolean; hasColors?: (env?: object) => boolean };
  if (tty.isTTY && typeof tty.hasColors === "function") return tty.hasColors(env);
  const force = env.FORCE_COLOR;
  return force !== undefined && force !== "0" && force !== "false";
}

/**
 * The format for a local process, from `CAPYDB_LOG_FORMAT` (`json`, `pretty`; unset: readable
 * on a terminal, JSON elsewhere). Deployed functions never call this: they always log JSON.
 */
export function localLogFormat(env: NodeJS.ProcessEnv = process.env): LogFormat {
  const raw = env.CAPYDB_LOG_FORMAT?.trim().toLowerCase();
  if (raw === undefined || raw === "") return "auto";
  if (raw === "json" || raw === "pretty" || raw === "auto") return raw;
  throw new ConfigError(`invalid setting CAPYDB_LOG_FORMAT: must be json, pretty or auto (got "${env.CAPYDB_LOG_FORMAT}")`);
}
