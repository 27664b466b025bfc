import type {
  CmdOutputMetadata,
  CmdOutputObservation,
  ErrorObservation,
  FileEditObservation,
  FileReadObservation,
  FileWriteObservation,
  IPythonRunCellObservation,
} from "@agent-runtime/runtime-core";

/** An observation in wire form (OpenHands `event_to_dict`), ready for JSON. */
export type WireObservation =
  | CmdOutputObservation
  | IPythonRunCellObservation
  | FileReadObservation
  | FileWriteObservation
  | (FileEditObservation & { extras: { _diff_cache: null } })
  | ErrorObservation;

/** Metadata of a command that did not complete (timeouts, refusals): everything null, exit code -1. */
export function emptyMetadata(prefix = "", suffix = ""): CmdOutputMetadata {
  return {
    exit_code: -1,
    pid: -1,
    username: null,
    hostname: null,
    working_dir: null,
    py_interpreter_path: null,
    prefix,
    suffix,
  };
}

/** A `run` observation; `success` is exit code 0 and the message names the command and exit code. */
export function cmdOutput(
  command: string,
  content: string,
  metadata: CmdOutputMetadata,
  hidden = false,
): CmdOutputObservation {
  return {
    observation: "run",
    content,
    message: `Command \`${command}\` executed with exit code ${metadata.exit_code}.`,
    extras: { command, hidden, metadata },
    success: metadata.exit_code === 0,
  };
}

/** An `error` observation (its message is its content). */
export function errorObservation(content: string, errorId = ""): ErrorObservation {
  return { observation: "error", content, message: content, extras: { error_id: errorId } };
}

/** A `read` observation. */
export function readObservation(path: string, content: string, implSource: string): FileReadObservation {
  return {
    observation: "read",
    content,
    message: `I read the file ${path}.`,
    extras: { path, impl_source: implSource },
  };
}

/** A `write` observation (content is always empty). */
export function writeObservation(path: string): FileWriteObservation {
  return { observation: "write", content: "", message: `I wrote to the file ${path}.`, extras: { path } };
}

/** An `edit` observation; editor errors are edit observations whose content starts with `ERROR:\n`. */
export function editObservation(
  path: string,
  content: string,
  fields: { prevExist: boolean; oldContent: string | null; newContent: string | null; diff: string | null },
): FileEditObservation & { extras: { _diff_cache: null } } {
  return {
    observation: "edit",
    content,
    message: `I edited the file ${path}.`,
    extras: {
      path,
      prev_exist: fields.prevExist,
      old_content: fields.oldContent,
      new_content: fields.newContent,
      impl_source: "oh_aci",
      diff: fields.diff,
      _diff_cache: null,
    },
  };
}

/** A `run_ipython` observation (`success` is always true, as in OpenHands). */
export function ipythonObservation(code: string, content: string): IPythonRunCellObservation {
  return {
    observation: "run_ipython",
    content,
    message: "Code executed in IPython cell.",
    extras: { code, image_urls: null },
    success: true,
  };
}
