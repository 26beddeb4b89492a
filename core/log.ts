import { Logger } from "@aws-lambda-powertools/logger";

export type Log = Logger;

/** JSON-lines logger (Powertools): one per process; add request/job ids with `createChild`. */
export function createLogger(level: "DEBUG" | "INFO" | "WARN" | "ERROR" = "INFO", serviceName = "capydb-backups"): Log {
  return new Logger({ serviceName, logLevel: level });
}
