import { isDockerEngineError } from "@agent-runtime/docker-engine";
import { isImageBuilderError } from "@agent-runtime/image-builder";
import { type ErrorCode, isRuntimeError, RuntimeError } from "@agent-runtime/runtime-core";

const ENGINE_CODES: Record<string, ErrorCode> = {
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  NOT_FOUND: "NOT_FOUND",
  CONFLICT: "ALREADY_EXISTS",
  UNAVAILABLE: "UNAVAILABLE",
  TIMEOUT: "TIMEOUT",
  CANCELLED: "CANCELLED",
  FAILED_PRECONDITION: "FAILED_PRECONDITION",
  INTERNAL: "INTERNAL",
};

const BUILDER_CODES: Record<string, ErrorCode> = {
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  LIMIT_EXCEEDED: "INVALID_ARGUMENT",
  UNSUPPORTED: "UNSUPPORTED",
  FAILED_PRECONDITION: "FAILED_PRECONDITION",
  NOT_FOUND: "NOT_FOUND",
  BUILD_FAILED: "FAILED_PRECONDITION",
  TIMEOUT: "TIMEOUT",
  UNAVAILABLE: "UNAVAILABLE",
};

/**
 * The one boundary from engine and image-builder failures to runtime-core's errors: `what` says which step
 * failed ("Creating the container for session s1"); the engine's message follows. RuntimeErrors pass through.
 */
export function toDockerRuntimeError(err: unknown, what: string): RuntimeError {
  if (isRuntimeError(err)) return err;
  if (isDockerEngineError(err)) {
    return new RuntimeError(ENGINE_CODES[err.code] ?? "INTERNAL", `${what}: ${err.message}`, { cause: err });
  }
  if (isImageBuilderError(err)) {
    const code = BUILDER_CODES[err.code] ?? "INTERNAL";
    const details = err.code === "BUILD_FAILED" ? { reason: "IMAGE_BUILD_FAILED" } : undefined;
    return new RuntimeError(code, `${what}: ${err.message}`, { cause: err, ...(details ? { details } : {}) });
  }
  return new RuntimeError("INTERNAL", `${what}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}
