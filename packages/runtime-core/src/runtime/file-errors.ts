import type { Redactor } from "../context.js";
import { type ErrorCode, RuntimeError } from "../errors.js";
import { FileErrorId } from "../protocol/constants.js";
import type { Observation } from "../protocol/observations.js";

/** The error code of each file error id the action server reports (`extras.error_id`). */
const CODE_OF_FILE_ERROR: Record<string, ErrorCode> = {
  [FileErrorId.NOT_FOUND]: "NOT_FOUND",
  [FileErrorId.BINARY]: "INVALID_ARGUMENT",
  [FileErrorId.IS_DIRECTORY]: "INVALID_ARGUMENT",
  [FileErrorId.DECODE]: "INVALID_ARGUMENT",
  [FileErrorId.PERMISSION]: "UNAUTHORIZED",
  [FileErrorId.IO]: "INTERNAL",
  [FileErrorId.NOT_A_REGULAR_FILE]: "INVALID_ARGUMENT",
  [FileErrorId.INVALID_PATH]: "INVALID_ARGUMENT",
  [FileErrorId.TOO_LARGE]: "INVALID_ARGUMENT",
};

/**
 * The error of a file method (`readFile`, `writeFile`, `edit`) whose observation is not the expected one: the
 * boundary where the action server's file error ids become error codes. The message and `details.path` are
 * redacted; `details.errorId` keeps the server's id.
 */
export function fileActionError(obs: Observation, path: string, redactor: Redactor): RuntimeError {
  const errorId = obs.observation === "error" ? obs.extras.error_id : "";
  const code = CODE_OF_FILE_ERROR[errorId] ?? "INVALID_ARGUMENT";
  return new RuntimeError(code, redactor.redact(`${path}: ${obs.content}`), {
    details: { errorId, path: redactor.redact(path) },
  });
}

/**
 * The error of an edit the editor refused: its protocol answers with an edit observation whose content starts
 * with `ERROR:`. Undefined when the edit succeeded.
 */
export function editRefusal(
  content: string,
  path: string,
  command: string,
  redactor: Redactor,
): RuntimeError | undefined {
  if (!content.startsWith("ERROR:")) return undefined;
  return new RuntimeError(
    "INVALID_ARGUMENT",
    redactor.redact(`edit ${command} ${path}: ${content.slice(6).trim()}`),
    { details: { path: redactor.redact(path), command } },
  );
}
