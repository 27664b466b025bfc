import { isImageBuilderError } from "@agent-runtime/image-builder";
import { type ErrorCode, isRuntimeError, RuntimeError } from "@agent-runtime/runtime-core";
import {
  AlreadyExistsError,
  ClientClosedError,
  ConflictError,
  InvalidError,
  NotFoundError,
  ResourceExhaustedError,
  SandboxTimeoutError,
  TimeoutError,
} from "modal";
import { MODAL_CREDENTIALS_HELP } from "./credentials.js";

/** Which step of the adapter a Modal call belongs to; it names the step in messages and maps plain errors. */
export type ModalStep =
  | "client"
  | "app"
  | "image"
  | "secret"
  | "create"
  | "tunnels"
  | "poll"
  | "terminate"
  | "lookup"
  | "tags"
  | "list";

/** gRPC status codes (numbers are the wire values) and the runtime-core code each maps to. */
const GRPC_CODES: Readonly<Record<number, { name: string; code: ErrorCode }>> = {
  1: { name: "CANCELLED", code: "UNAVAILABLE" },
  2: { name: "UNKNOWN", code: "UNAVAILABLE" },
  3: { name: "INVALID_ARGUMENT", code: "INVALID_ARGUMENT" },
  4: { name: "DEADLINE_EXCEEDED", code: "TIMEOUT" },
  5: { name: "NOT_FOUND", code: "NOT_FOUND" },
  6: { name: "ALREADY_EXISTS", code: "ALREADY_EXISTS" },
  7: { name: "PERMISSION_DENIED", code: "UNAUTHORIZED" },
  8: { name: "RESOURCE_EXHAUSTED", code: "RATE_LIMITED" },
  9: { name: "FAILED_PRECONDITION", code: "FAILED_PRECONDITION" },
  10: { name: "ABORTED", code: "UNAVAILABLE" },
  11: { name: "OUT_OF_RANGE", code: "INVALID_ARGUMENT" },
  12: { name: "UNIMPLEMENTED", code: "UNSUPPORTED" },
  13: { name: "INTERNAL", code: "UNAVAILABLE" },
  14: { name: "UNAVAILABLE", code: "UNAVAILABLE" },
  15: { name: "DATA_LOSS", code: "INTERNAL" },
  16: { name: "UNAUTHENTICATED", code: "UNAUTHORIZED" },
};

/** nice-grpc's `ClientError` (the SDK does not export it): a gRPC status that the SDK passed through. */
interface GrpcClientError extends Error {
  name: "ClientError";
  code: number;
  details: string;
}

function isGrpcClientError(err: unknown): err is GrpcClientError {
  if (!(err instanceof Error) || err.name !== "ClientError") return false;
  const e = err as Error & { code?: unknown; details?: unknown };
  return typeof e.code === "number" && typeof e.details === "string";
}

/** An instance of `Error` itself, not of a subclass (TypeError, the SDK's error classes, gRPC errors...). */
function isPlainError(err: unknown): err is Error {
  return err instanceof Error && Object.getPrototypeOf(err) === Error.prototype;
}

const NEXT_STEP: Partial<Record<ErrorCode, string>> = {
  UNAUTHORIZED: MODAL_CREDENTIALS_HELP,
  UNAVAILABLE: "Modal is unreachable or failing; retry later (retries with backoff were already made).",
  RATE_LIMITED: "Modal asked to slow down; lower the create rate or the warm pool size, or retry later.",
  TIMEOUT: "Retry, or raise startupTimeoutMs.",
};

function classify(err: unknown, step: ModalStep): { code: ErrorCode; text: string } {
  if (err instanceof NotFoundError) return { code: "NOT_FOUND", text: err.message };
  if (err instanceof AlreadyExistsError) return { code: "ALREADY_EXISTS", text: err.message };
  if (err instanceof ConflictError) {
    // At create, modal@0.11.1 raises it only while waiting for a V1 sandbox to be scheduled (`_waitForScheduling`).
    if (step === "create")
      return {
        code: "FAILED_PRECONDITION",
        text: `${err.message} (the sandbox ended before Modal scheduled it: its start command exited at once, or Modal stopped it)`,
      };
    return { code: "FAILED_PRECONDITION", text: err.message };
  }
  if (err instanceof InvalidError) {
    // The SDK raises InvalidError for missing or conflicting credentials before any call.
    return { code: step === "client" ? "UNAUTHORIZED" : "INVALID_ARGUMENT", text: err.message };
  }
  if (err instanceof SandboxTimeoutError || err instanceof TimeoutError)
    return { code: "TIMEOUT", text: err.message };
  if (err instanceof ClientClosedError)
    return {
      code: "FAILED_PRECONDITION",
      text: `${err.message} (the Modal client was closed; create a new provider)`,
    };
  if (err instanceof ResourceExhaustedError) return { code: "RATE_LIMITED", text: err.message };
  if (isGrpcClientError(err)) {
    const mapped = GRPC_CODES[err.code] ?? { name: `status ${err.code}`, code: "UNAVAILABLE" as const };
    return { code: mapped.code, text: `${mapped.name}: ${err.details || err.message}` };
  }
  const text = err instanceof Error ? err.message : String(err);
  // The SDK checks a create's parameters before sending it (modal@0.11.1's `buildSandboxCreateRequestProto`:
  // timeouts, workdir, cpu/memory pairs...) and throws a plain `Error` (not its InvalidError) for a bad one.
  // Told apart by class and step, not by text: only an exact `Error` at the create step.
  if (step === "create" && isPlainError(err))
    return {
      code: "INVALID_ARGUMENT",
      text: `${text} (the Modal SDK refused a sandbox parameter before sending it)`,
    };
  // The SDK reports a failed image build as a plain Error; only the image step can produce one.
  if (step === "image")
    return {
      code: "FAILED_PRECONDITION",
      text: `${text} (fix the image spec; the build log is in the Modal dashboard)`,
    };
  return { code: "INTERNAL", text };
}

/**
 * The one boundary where Modal SDK and gRPC failures become runtime-core errors: SDK error classes and gRPC
 * status codes map to codes, never message text. RuntimeErrors (and image-builder errors) keep their code.
 */
export function toModalRuntimeError(err: unknown, step: ModalStep, what: string): RuntimeError {
  if (isRuntimeError(err)) return err;
  if (isImageBuilderError(err)) {
    const code: ErrorCode =
      err.code === "LIMIT_EXCEEDED"
        ? "INVALID_ARGUMENT"
        : err.code === "BUILD_FAILED"
          ? "FAILED_PRECONDITION"
          : err.code;
    return new RuntimeError(code, `${what}: ${err.message}`, {
      cause: err,
      details: { step, issues: err.issues },
    });
  }
  const { code, text } = classify(err, step);
  const next = NEXT_STEP[code];
  const grpcCode = isGrpcClientError(err) ? err.code : undefined;
  return new RuntimeError(code, `${what}: ${text}${next ? `. ${next}` : ""}`, {
    cause: err,
    details: { step, ...(grpcCode !== undefined ? { grpcCode } : {}) },
  });
}

/** True for codes worth retrying after the SDK's own retries gave up. */
export function isTransient(err: RuntimeError): boolean {
  return err.code === "UNAVAILABLE" || err.code === "RATE_LIMITED";
}

/** Backoff settings of {@link withRetry}. */
export interface RetrySettings {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

/**
 * Runs `fn` and maps its failures through {@link toModalRuntimeError}; transient ones (UNAVAILABLE,
 * RATE_LIMITED, which the SDK already retried briefly) are tried again with exponential backoff and jitter
 * until `maxAttempts` or the deadline. Use it only for idempotent calls.
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  options: {
    step: ModalStep;
    what: string;
    retry: RetrySettings;
    deadline?: number;
    signal?: AbortSignal;
    onRetry?: (err: RuntimeError, attempt: number) => void;
  },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (raw) {
      const err = toModalRuntimeError(raw, options.step, options.what);
      const delay =
        Math.min(options.retry.maxDelayMs, options.retry.initialDelayMs * 2 ** (attempt - 1)) *
        (0.75 + Math.random() * 0.5);
      const late = options.deadline !== undefined && Date.now() + delay > options.deadline;
      if (!isTransient(err) || attempt >= options.retry.maxAttempts || late || options.signal?.aborted)
        throw err;
      options.onRetry?.(err, attempt);
      await sleep(delay, options.signal);
    }
  }
}

/** Waits `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
