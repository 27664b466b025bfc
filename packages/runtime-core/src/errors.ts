/**
 * Error codes shared by every agent-runtime package. Backends map vendor failures to these in one boundary
 * function each; callers branch on `code`, never on message text.
 */
export const ErrorCode = {
  /** The thing asked for (sandbox, session, file, plugin name) does not exist. */
  NOT_FOUND: "NOT_FOUND",
  /** A deadline passed before the operation finished (readiness, an HTTP call, an action). */
  TIMEOUT: "TIMEOUT",
  /** Credentials are missing, malformed or rejected (bad session key, bad Modal token). */
  UNAUTHORIZED: "UNAUTHORIZED",
  /** The remote side asked us to slow down (HTTP 429, gRPC RESOURCE_EXHAUSTED) and retries ran out. */
  RATE_LIMITED: "RATE_LIMITED",
  /** A budget would be crossed: nothing was created. The message gives spent, reserved, limit, requested. */
  BUDGET_EXCEEDED: "BUDGET_EXCEEDED",
  /** Input failed validation; the message names each path and what is wrong with it. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** The backend lacks a declared capability, or the operation is not implemented there. */
  UNSUPPORTED: "UNSUPPORTED",
  /** The sandbox or its server went away (process died, connection refused after readiness, 404/502/504). */
  DISCONNECTED: "DISCONNECTED",
  /** Something with the same name or id already exists. */
  ALREADY_EXISTS: "ALREADY_EXISTS",
  /** The call is valid but not in the current state (runtime not connected, already closed). */
  FAILED_PRECONDITION: "FAILED_PRECONDITION",
  /** A transient failure of a dependency; retrying later may succeed. */
  UNAVAILABLE: "UNAVAILABLE",
  /** The operation was cancelled by the caller (AbortSignal, close while waiting). */
  CANCELLED: "CANCELLED",
  /** A bug or an unexpected response; the `cause` carries details. */
  INTERNAL: "INTERNAL",
} as const;

/** One of the {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options accepted by {@link RuntimeError}. */
export interface RuntimeErrorOptions {
  /** The underlying error (ES2022 `cause`). */
  cause?: unknown;
  /** Structured, secret-free details for programs (for example `{ path: "steps[3]" }`). */
  details?: Record<string, unknown>;
}

/**
 * The one base error of agent-runtime: a typed `code`, a message that says what to do next, and `cause`.
 *
 * @example
 * ```ts
 * try { await runtime.run(action); }
 * catch (err) { if (isRuntimeError(err, "DISCONNECTED")) await reconnect(); else throw err; }
 * ```
 */
export class RuntimeError extends Error {
  override readonly name: string = "RuntimeError";
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: RuntimeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  /** A JSON form without stack or cause (safe to send over an API). */
  toJSON(): { name: string; code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** Thrown when input fails validation; `issues` lists every problem as `path: message`. */
export class InvalidArgumentError extends RuntimeError {
  override readonly name: string = "InvalidArgumentError";
  readonly issues: readonly string[];

  constructor(message: string, issues: readonly string[] = [], options: RuntimeErrorOptions = {}) {
    super("INVALID_ARGUMENT", message, { ...options, details: { ...options.details, issues } });
    this.issues = issues;
  }
}

/** True when `err` is a {@link RuntimeError}, optionally with the given code. */
export function isRuntimeError(err: unknown, code?: ErrorCode): err is RuntimeError {
  return err instanceof RuntimeError && (code === undefined || err.code === code);
}

/** Wraps any thrown value as a RuntimeError with `fallback` code, keeping RuntimeErrors as they are. */
export function toRuntimeError(
  err: unknown,
  fallback: ErrorCode = "INTERNAL",
  message?: string,
): RuntimeError {
  if (err instanceof RuntimeError) return err;
  const text = message ?? (err instanceof Error ? err.message : String(err));
  return new RuntimeError(fallback, text, { cause: err });
}
