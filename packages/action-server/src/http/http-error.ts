import { InvalidArgumentError, isRuntimeError } from "@agent-runtime/runtime-core";

/** An error answered with `status` and `{"detail": ..., ...extra}` (FastAPI's error shape). */
export class HttpError extends Error {
  override readonly name = "HttpError";
  readonly status: number;
  readonly extra: Record<string, unknown>;

  constructor(status: number, detail: string, extra: Record<string, unknown> = {}) {
    super(detail);
    this.status = status;
    this.extra = extra;
  }

  /** The JSON body. */
  body(): Record<string, unknown> {
    return { detail: this.message, ...this.extra };
  }
}

/** 422 for a request that failed validation; `errors` lists each problem as `path: message`. */
export function invalidRequest(issues: readonly string[]): HttpError {
  return new HttpError(422, "Invalid request parameters", { errors: [...issues] });
}

/**
 * The one boundary from thrown values to HTTP answers: HttpError as is, INVALID_ARGUMENT as 422 naming the
 * fields, other RuntimeError codes by meaning, anything else 500 `Internal server error: <message>`.
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof InvalidArgumentError)
    return invalidRequest(err.issues.length > 0 ? err.issues : [err.message]);
  if (isRuntimeError(err)) {
    const status: Partial<Record<string, number>> = {
      NOT_FOUND: 404,
      INVALID_ARGUMENT: 400,
      FAILED_PRECONDITION: 409,
      UNAVAILABLE: 503,
      UNSUPPORTED: 501,
      UNAUTHORIZED: 403,
    };
    return new HttpError(status[err.code] ?? 500, err.message);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new HttpError(500, `Internal server error: ${message}`);
}
