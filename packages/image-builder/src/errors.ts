import type { z } from "zod";

/**
 * Error codes of image-builder. The names match `@agent-runtime/runtime-core`'s codes where the meaning is the
 * same, so a runtime can map them one to one; this package does not depend on runtime-core.
 */
export const ImageBuilderErrorCode = {
  /** The spec (or an option, or a CLI argument) failed validation; `issues` lists each `path: message`. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** Inline content (copyInline files, an inline action-server bundle) is over the configured size limit. */
  LIMIT_EXCEEDED: "LIMIT_EXCEEDED",
  /** The target cannot express part of the spec (for example a multi-stage Dockerfile base on Modal). */
  UNSUPPORTED: "UNSUPPORTED",
  /** The call needs something the spec lacks (for example a start command when the spec has no server). */
  FAILED_PRECONDITION: "FAILED_PRECONDITION",
  /** A file the caller named (a spec, a tags file, the action-server package) does not exist. */
  NOT_FOUND: "NOT_FOUND",
  /** A build through a container engine failed (a step exited non-zero); the message ends with the log tail. */
  BUILD_FAILED: "BUILD_FAILED",
  /** A build through a container engine took longer than its deadline. */
  TIMEOUT: "TIMEOUT",
  /** The container engine cannot be reached. */
  UNAVAILABLE: "UNAVAILABLE",
  /** A build through a container engine was cancelled by its `signal`. */
  CANCELLED: "CANCELLED",
} as const;

/** One of the {@link ImageBuilderErrorCode} values. */
export type ImageBuilderErrorCode = (typeof ImageBuilderErrorCode)[keyof typeof ImageBuilderErrorCode];

/** Options of {@link ImageBuilderError}. */
export interface ImageBuilderErrorOptions {
  /** Every problem as `path: message`, the path pointing into the spec (for example `steps[3].packages[0]`). */
  issues?: readonly string[];
  /** The underlying error (ES2022 `cause`). */
  cause?: unknown;
}

/**
 * The one error class of image-builder: a typed `code`, a message that says what to do next and, for
 * validation failures, `issues` as `path: message` pointing into the spec.
 *
 * @example
 * ```ts
 * try { toDockerfile(spec); }
 * catch (err) { if (err instanceof ImageBuilderError && err.code === "INVALID_ARGUMENT") console.error(err.issues); }
 * ```
 */
export class ImageBuilderError extends Error {
  override readonly name = "ImageBuilderError";
  /** What kind of failure this is; branch on this, never on the message. */
  readonly code: ImageBuilderErrorCode;
  /** Every problem as `path: message` (empty when the error is not about particular paths). */
  readonly issues: readonly string[];

  constructor(code: ImageBuilderErrorCode, message: string, options: ImageBuilderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues ?? [];
  }

  /** A JSON form without stack or cause. */
  toJSON(): { name: string; code: ImageBuilderErrorCode; message: string; issues: readonly string[] } {
    return { name: this.name, code: this.code, message: this.message, issues: this.issues };
  }
}

/** True when `err` is an {@link ImageBuilderError}, optionally with the given code. */
export function isImageBuilderError(err: unknown, code?: ImageBuilderErrorCode): err is ImageBuilderError {
  return err instanceof ImageBuilderError && (code === undefined || err.code === code);
}

/** Formats a path like `steps[3].packages[0]` (the empty path is `(root)`). */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || "(root)";
}

/** @internal Every zod issue as `path: message`. */
export function zodIssues(error: z.ZodError, prefix: readonly PropertyKey[] = []): string[] {
  return error.issues.map((issue) => `${formatIssuePath([...prefix, ...issue.path])}: ${issue.message}`);
}

/** @internal Parses with `schema` or throws INVALID_ARGUMENT listing every issue under a heading naming `what`. */
export function parseOrThrow<TSchema extends z.ZodType>(
  schema: TSchema,
  input: unknown,
  what: string,
): z.output<TSchema> {
  const result = schema.safeParse(input, {
    error: (issue) =>
      issue.code === "invalid_type" && issue.input === undefined
        ? `is required (${issue.expected})`
        : undefined,
  });
  if (result.success) return result.data;
  const issues = zodIssues(result.error);
  throw new ImageBuilderError("INVALID_ARGUMENT", `Invalid ${what}:\n  ${issues.join("\n  ")}`, { issues });
}
