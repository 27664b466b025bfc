/** Protocol texts shared by the action-server and clients (OpenHands V0 wording, kept exactly). */

/** Appended after a timeout to tell the agent what it can do next. */
export const TIMEOUT_MESSAGE_TEMPLATE =
  'You may wait longer to see additional output by sending empty command \'\', send other commands to interact with the current process, send keys ("C-c", "C-z", "C-d") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in execute_bash for future commands.';

/** Commands whose output exceeds this many characters keep only their head and tail. */
export const MAX_CMD_OUTPUT_CHARS = 30_000;
/** Marker placed between the kept head and tail of truncated output. */
export const OUTPUT_TRUNCATION_MARKER = "\n[... Observation truncated due to length ...]\n";
/** The editor clips long output at this many characters. */
export const MAX_EDITOR_RESPONSE_CHARS = 16_000;
/** Appended to clipped editor output. */
export const EDITOR_CLIPPED_NOTICE =
  "<response clipped><NOTE>Due to the max output limit, only part of this file has been shown to you. You should retry this tool after you have searched inside the file with `grep -n` in order to find the line numbers of what you are looking for.</NOTE>";

/** Default no-change timeout of the server, in seconds (`NO_CHANGE_TIMEOUT_SECONDS`). */
export const DEFAULT_NO_CHANGE_TIMEOUT_SECONDS = 10;

/** Prefix of output returned for a command that was already running. */
export const PREVIOUS_OUTPUT_PREFIX = "[Below is the output of the previous command.]\n";

/** Suffix of a completed command. */
export function completedSuffix(exitCode: number): string {
  return `\n[The command completed with exit code ${exitCode}.]`;
}

/** Suffix of a command completed after a key such as C-c was sent. */
export function completedAfterKeySuffix(exitCode: number, key: string): string {
  const name = key.startsWith("C-") ? `CTRL+${key.slice(2).toUpperCase()}` : key;
  return `\n[The command completed with exit code ${exitCode}. ${name} was sent.]`;
}

/** Suffix when no output arrived for `seconds`. */
export function noChangeTimeoutSuffix(seconds: number): string {
  return `\n[The command has no new output after ${formatSeconds(seconds)} seconds. ${TIMEOUT_MESSAGE_TEMPLATE}]`;
}

/** Suffix when the hard timeout fired. Python prints the timeout as a float (3 -> 3.0). */
export function hardTimeoutSuffix(seconds: number): string {
  return `\n[The command timed out after ${formatFloat(seconds)} seconds. ${TIMEOUT_MESSAGE_TEMPLATE}]`;
}

/** Suffix when a new command was refused because another one still runs. */
export function notExecutedSuffix(command: string): string {
  return `\n[Your command "${command}" is NOT executed. The previous command is still running - You CANNOT send new commands until the previous command is completed. By setting \`is_input\` to \`true\`, you can interact with the current process: ${TIMEOUT_MESSAGE_TEMPLATE}]`;
}

export const NO_PREVIOUS_COMMAND_LOGS = "ERROR: No previous running command to retrieve logs from.";
export const NO_PREVIOUS_COMMAND_INPUT = "ERROR: No previous running command to interact with.";
export const MULTIPLE_COMMANDS_ERROR =
  "ERROR: Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;";
/**
 * `extras.error_id` values of file errors. OpenHands only sets ERROR_BINARY_FILE; our server sets all of them
 * (an empty id stays valid on the wire), so clients branch on ids, never on message text.
 */
export const FileErrorId = {
  BINARY: "ERROR_BINARY_FILE",
  NOT_FOUND: "FILE_NOT_FOUND",
  IS_DIRECTORY: "IS_DIRECTORY",
  DECODE: "DECODE_ERROR",
  PERMISSION: "PERMISSION_DENIED",
  IO: "IO_ERROR",
  /** The path names a device, FIFO or socket: file actions only read and write regular files. */
  NOT_A_REGULAR_FILE: "NOT_A_REGULAR_FILE",
  /** The path cannot name a file (a NUL byte in it). */
  INVALID_PATH: "INVALID_PATH",
  /** The file is larger than the action handles (counted while reading, not taken from `stat`). */
  TOO_LARGE: "FILE_TOO_LARGE",
} as const;

export const BROWSER_UNSUPPORTED = "Browser functionality is not supported or disabled.";

/** Truncates command output to the first and last half of {@link MAX_CMD_OUTPUT_CHARS}. */
export function truncateOutput(content: string, limit = MAX_CMD_OUTPUT_CHARS): string {
  if (content.length <= limit) return content;
  const half = Math.floor(limit / 2);
  return content.slice(0, half) + OUTPUT_TRUNCATION_MARKER + content.slice(content.length - half);
}

function formatFloat(n: number): string {
  return Number.isInteger(n) ? `${n}.0` : String(n);
}
function formatSeconds(n: number): string {
  return String(n);
}
