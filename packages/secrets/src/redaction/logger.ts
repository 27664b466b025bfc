import type { Logger, Redactor } from "@agent-runtime/runtime-core";
import { redactingLogger } from "@agent-runtime/runtime-core";

/**
 * Wraps `logger` so that messages and fields (deeply, including errors in them) pass through `redactor`
 * first: runtime-core's `redactingLogger` bound to a {@link Redactor}.
 *
 * @example
 * ```ts
 * const logger = redactLogger(console, resolver.redactor);
 * ```
 */
export function redactLogger(logger: Logger, redactor: Redactor): Logger {
  return redactingLogger(logger, (value) => redactor.redactDeep(value));
}
