import { noopRedactor, type Redactor, toRuntimeError } from "@agent-runtime/runtime-core";
import type { ErrorInfo } from "../store.js";

/** A secret-free error for storage and the API (`redactor` scrubs values the error may quote). */
export function errorInfo(err: unknown, redactor: Redactor = noopRedactor): ErrorInfo {
  const e = toRuntimeError(err);
  const info = { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) };
  return redactor.isEmpty ? info : redactor.redactDeep(info);
}
