/** Structured fields attached to a log line. Never put secret values here: log ids, not values. */
export type LogFields = Record<string, unknown>;

/**
 * The small logging interface every package accepts. `console` satisfies it, and so does pino
 * (whose methods take `(fields, message)`; wrap it with {@link fromPino}).
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const noop = (): void => {};

/** A logger that drops everything: the default for libraries, except warnings (see {@link quietLogger}). */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** The default when no logger is passed: quiet, but warnings and errors still reach stderr. */
export const quietLogger: Logger = {
  debug: noop,
  info: noop,
  warn: (message, fields) => console.warn(`[agent-runtime] ${message}`, ...(fields ? [fields] : [])),
  error: (message, fields) => console.error(`[agent-runtime] ${message}`, ...(fields ? [fields] : [])),
};

/** Adapts a pino-style logger (`log(fields, message)`) to {@link Logger}. */
export function fromPino(pino: {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}): Logger {
  return {
    debug: (m, f) => pino.debug(f ?? {}, m),
    info: (m, f) => pino.info(f ?? {}, m),
    warn: (m, f) => pino.warn(f ?? {}, m),
    error: (m, f) => pino.error(f ?? {}, m),
  };
}

/** Returns a logger whose messages and fields pass through `redact` first. */
export function redactingLogger(inner: Logger, redact: (value: unknown) => unknown): Logger {
  const wrap =
    (level: keyof Logger) =>
    (message: string, fields?: LogFields): void => {
      const m = redact(message) as string;
      if (fields === undefined) inner[level](m);
      else inner[level](m, redact(fields) as LogFields);
    };
  return { debug: wrap("debug"), info: wrap("info"), warn: wrap("warn"), error: wrap("error") };
}
