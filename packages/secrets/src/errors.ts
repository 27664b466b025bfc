import type { ErrorCode } from "@agent-runtime/runtime-core";
import { RuntimeError } from "@agent-runtime/runtime-core";

/** Node system error codes -> agent-runtime codes and the advice that goes with them. */
const SYSTEM_CODES: Record<string, { code: ErrorCode; advice: string }> = {
  ENOENT: { code: "NOT_FOUND", advice: "check the path" },
  ENOTDIR: { code: "NOT_FOUND", advice: "a parent of the path is not a directory" },
  EACCES: { code: "UNAUTHORIZED", advice: "check the file's owner and permissions" },
  EPERM: { code: "UNAUTHORIZED", advice: "check the file's owner and permissions" },
  EISDIR: { code: "INVALID_ARGUMENT", advice: "the path is a directory, not a file" },
  ENOSPC: { code: "UNAVAILABLE", advice: "the disk is full" },
  EROFS: { code: "UNAVAILABLE", advice: "the file system is read-only" },
  EBUSY: { code: "UNAVAILABLE", advice: "retry later" },
  EMFILE: { code: "UNAVAILABLE", advice: "too many open files; retry later" },
};

/**
 * The one boundary function of this package: maps file-system and other failures to a {@link RuntimeError}
 * whose message says what was being done (`action`, for example "read the store /x/secrets.enc") and what
 * to do next. RuntimeErrors pass through unchanged. Messages are built from paths and codes, never values.
 */
export function toSecretsError(err: unknown, action: string): RuntimeError {
  if (err instanceof RuntimeError) return err;
  const sys = (err as { code?: unknown } | null)?.code;
  if (typeof sys === "string") {
    const mapped = SYSTEM_CODES[sys];
    if (mapped)
      return new RuntimeError(mapped.code, `Could not ${action}: ${sys} (${mapped.advice}).`, { cause: err });
    return new RuntimeError("INTERNAL", `Could not ${action}: ${sys}.`, { cause: err });
  }
  return new RuntimeError("INTERNAL", `Could not ${action}.`, { cause: err });
}
