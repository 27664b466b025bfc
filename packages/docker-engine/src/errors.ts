/** What went wrong, in the codes runtime-core uses. */
export type DockerEngineErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "CONFLICT"
  | "UNAVAILABLE"
  | "TIMEOUT"
  | "CANCELLED"
  | "FAILED_PRECONDITION"
  | "INTERNAL";

/** An error from the engine or from talking to it. `status` is the HTTP status when the engine answered. */
export class DockerEngineError extends Error {
  override readonly name = "DockerEngineError";
  readonly code: DockerEngineErrorCode;
  readonly status: number | undefined;

  constructor(
    code: DockerEngineErrorCode,
    message: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
  }
}

/** True when `err` is a {@link DockerEngineError} (with `code`, when given). */
export function isDockerEngineError(err: unknown, code?: DockerEngineErrorCode): err is DockerEngineError {
  return err instanceof DockerEngineError && (code === undefined || err.code === code);
}

/** The code of an engine HTTP status. */
export function codeOfStatus(status: number): DockerEngineErrorCode {
  if (status === 400) return "INVALID_ARGUMENT";
  if (status === 404) return "NOT_FOUND";
  if (status === 409) return "CONFLICT";
  if (status === 304) return "FAILED_PRECONDITION";
  if (status === 503) return "UNAVAILABLE";
  return "INTERNAL";
}

/** The message of an engine's error answer (its JSON `message`, else the text, cut to 1000 characters). */
export function engineMessage(body: Buffer): string {
  const text = body.toString("utf8").trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // not JSON
  }
  return text.slice(0, 1000) || "(no message)";
}
