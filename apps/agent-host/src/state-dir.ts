import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { RuntimeError } from "@agent-runtime/runtime-core";

/** Mode of the state directory: only its owner may list, read or write it. */
export const STATE_DIR_MODE = 0o700;
/** Mode of every file agent-host keeps there (database, WAL, token, ledger). */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Where agent-host keeps its state when neither `storage.stateDir` nor `--state-dir` says:
 * `$XDG_STATE_HOME/agent-host` when that variable is an absolute path, else `~/.local/state/agent-host`.
 * Never the working directory.
 */
export function defaultStateDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const xdg = env.XDG_STATE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, "agent-host");
  return join(env.HOME || homedir(), ".local", "state", "agent-host");
}

const uid = (): number | undefined => process.getuid?.();

/**
 * Creates the state directory with mode 0700, or checks an existing one: ours and looser than 0700 is
 * tightened; someone else's that is group- or world-writable is refused (FAILED_PRECONDITION), because whoever
 * can write there can swap the database or the token. Returns the absolute path.
 */
export function ensureStateDir(path: string): string {
  const dir = resolve(path);
  if (!existsSync(dir)) {
    try {
      mkdirSync(dir, { recursive: true, mode: STATE_DIR_MODE });
    } catch (cause) {
      throw new RuntimeError(
        "UNAVAILABLE",
        `Cannot create the state directory ${dir} (${(cause as NodeJS.ErrnoException).code ?? "error"}); pick another with --state-dir (or storage.stateDir).`,
        { cause },
      );
    }
  }
  const link = lstatSync(dir);
  const stat = link.isSymbolicLink() ? statSync(dir) : link;
  if (!stat.isDirectory()) {
    throw new RuntimeError(
      "FAILED_PRECONDITION",
      `The state directory ${dir} is not a directory; pick another with --state-dir (or storage.stateDir).`,
    );
  }
  const mode = stat.mode & 0o777;
  const me = uid();
  const ours = me === undefined || stat.uid === me;
  if (!ours) {
    if ((mode & 0o022) !== 0) {
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        `The state directory ${dir} belongs to uid ${stat.uid} and is writable by other users (mode ${mode.toString(8).padStart(4, "0")}): anyone could replace the database or the token there. Use a directory of your own (--state-dir, or storage.stateDir), or have its owner run \`chmod 700 ${dir}\`.`,
      );
    }
    return dir;
  }
  if (mode !== STATE_DIR_MODE) chmodSync(dir, STATE_DIR_MODE);
  return dir;
}

/**
 * Makes sure `path` exists as a file of mode 0600 (created so, or tightened when it is ours). Used before
 * SQLite opens a database so that it and its -wal and -shm files (which SQLite creates with the database's
 * mode) are never readable by others.
 */
export function ensurePrivateFile(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, "a", PRIVATE_FILE_MODE));
  tightenFile(path);
}

/** Sets an existing file of ours to 0600; a no-op for files that do not exist. */
export function tightenFile(path: string): void {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch {
    return;
  }
  const me = uid();
  if ((stat.mode & 0o777) !== PRIVATE_FILE_MODE && (me === undefined || stat.uid === me))
    chmodSync(path, PRIVATE_FILE_MODE);
}

/** {@link tightenFile} for a SQLite database and its `-wal`, `-shm` and `-journal` files. */
export function tightenDatabaseFiles(path: string): void {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) tightenFile(path + suffix);
}
