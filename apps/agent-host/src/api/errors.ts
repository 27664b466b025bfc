import { type ErrorCode, isRuntimeError, toRuntimeError } from "@agent-runtime/runtime-core";

/** HTTP status of each error code: the one boundary between runtime errors and HTTP. */
const STATUS_OF: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHORIZED: 401,
  BUDGET_EXCEEDED: 402,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  RATE_LIMITED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  UNSUPPORTED: 501,
  DISCONNECTED: 502,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
};

/** The HTTP status for an error code (500 for anything unknown). */
export function httpStatusOf(code: string): number {
  return STATUS_OF[code as ErrorCode] ?? 500;
}

/** Maps any thrown value to an HTTP status and the `{ error }` body (secret-free: no stack, no cause). */
export function toErrorResponse(err: unknown): { status: number; body: { error: Record<string, unknown> } } {
  const e = toRuntimeError(err);
  const issues = Array.isArray(e.details?.issues) ? (e.details.issues as string[]) : undefined;
  const details = e.details
    ? Object.fromEntries(Object.entries(e.details).filter(([k]) => k !== "issues"))
    : undefined;
  return {
    status: httpStatusOf(e.code),
    body: {
      error: {
        code: e.code,
        message: isRuntimeError(err) ? e.message : "Internal error; see the host log.",
        ...(issues ? { issues } : {}),
        ...(details && Object.keys(details).length > 0 ? { details } : {}),
      },
    },
  };
}
