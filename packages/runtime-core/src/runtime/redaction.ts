import type { Redactor } from "../context.js";
import { RuntimeError, toRuntimeError } from "../errors.js";

/** A redactor that applies `a`, then `b` (the host's, then the sandbox's secrets). */
export function combineRedactors(a: Redactor, b: Redactor | undefined): Redactor {
  if (!b || b.isEmpty) return a;
  if (a.isEmpty) return b;
  return {
    isEmpty: false,
    redact: (t) => b.redact(a.redact(t)),
    redactDeep: (v) => b.redactDeep(a.redactDeep(v)),
  };
}

/** `err` as a RuntimeError whose message and details hold no secret `redactor` knows. */
export function redactError(err: unknown, redactor: Redactor): RuntimeError {
  const e = toRuntimeError(err);
  const message = redactor.redact(e.message);
  if (message === e.message) return e;
  return new RuntimeError(e.code, message, {
    ...(e.details ? { details: redactor.redactDeep(e.details) } : {}),
  });
}
