import type { Redactor } from "../context.js";
import type { Logger } from "../logger.js";
import { RuntimeStatus, type StatusEvent } from "./types.js";

/** Who is reporting, read at each event (the session id changes on pool hand-out, the redactor on connect). */
export interface StatusSource {
  logger: Logger;
  redactor: Redactor;
  /** Log fields naming the runtime (ids only). */
  fields: Record<string, string>;
}

/**
 * A runtime's status and its listeners: each event's message is redacted, logged (errors at warn, the rest at
 * debug) and handed to every listener; a listener that throws is logged and the others still run.
 */
export class StatusChannel {
  readonly #source: () => StatusSource;
  readonly #listeners = new Set<(e: StatusEvent) => void>();
  #status: RuntimeStatus = RuntimeStatus.STOPPED;

  constructor(source: () => StatusSource) {
    this.#source = source;
  }

  get status(): RuntimeStatus {
    return this.#status;
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: (event: StatusEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(status: RuntimeStatus, message = "", level: StatusEvent["level"] = "info"): void {
    const { logger, redactor, fields } = this.#source();
    this.#status = status;
    const event: StatusEvent = { status, level, message: redactor.redact(message), at: Date.now() };
    (level === "error" ? logger.warn : logger.debug).call(logger, `runtime status ${status}`, {
      ...fields,
      ...(event.message ? { detail: event.message } : {}),
    });
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (err) {
        logger.warn("status listener threw", { error: redactor.redact(String(err)) });
      }
    }
  }
}
