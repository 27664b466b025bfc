import { posix } from "node:path";
import type { ActionExecutionClient } from "../client/action-execution-client.js";
import type { ResolvedSecrets } from "../context.js";
import { RuntimeError } from "../errors.js";
import { cmdRun, fileWrite } from "../protocol/codec.js";
import type { Observation } from "../protocol/observations.js";

/** A secret file with its path resolved inside the sandbox. */
interface PlacedFile {
  /** The path as the resolver gave it (safe to show). */
  requested: string;
  /** Absolute path in the sandbox. */
  path: string;
  content: string;
  mode: number;
}

/** Quotes `text` for a POSIX shell (single quotes; `'` becomes `'\''`). */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function outputOf(obs: Observation): string {
  return obs.content.trim().slice(0, 500);
}

/**
 * Writes `ResolvedSecrets.files` into a sandbox whose action server answers but which is not READY yet: the
 * provisioning step of every backend (BaseRuntime calls it from `connect()`, with the client directly, before
 * it reports READY). For each file:
 * 1. A leading `~/` resolves to the sandbox shell's `$HOME`; any other path must be absolute.
 * 2. A hidden shell command (as the sandbox user) creates the parents and an empty file with `mode` under
 *    umask 077, so the content is never readable with wider permissions, not even for a moment.
 * 3. The content goes through the `write` action, which rewrites the file in place (mode and owner kept).
 *    It is never on a command line, and the write observation does not echo it. The write action ends the
 *    last line with a newline when the content lacks one.
 *
 * Errors name the path, never the content. Observations stay inside this function.
 */
export async function provisionSecretFiles(
  client: ActionExecutionClient,
  files: ResolvedSecrets["files"],
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  if (!files) return;
  const entries = Object.entries(files);
  if (entries.length === 0) return;
  const send = (action: Parameters<ActionExecutionClient["executeAction"]>[0]) =>
    client.executeAction(action, options.signal ? { signal: options.signal } : {});
  for (const [path] of entries) {
    if (!path.startsWith("~/") && !path.startsWith("/"))
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `secrets.files: ${JSON.stringify(path)} must be absolute or start with ~/ (the sandbox's HOME).`,
      );
  }
  let home: string | undefined;
  if (entries.some(([path]) => path.startsWith("~/"))) {
    const obs = await send(cmdRun('printf %s "$HOME"', { hidden: true, timeoutMs: 30_000 }));
    home = obs.content.trim();
    if (obs.observation !== "run" || !home.startsWith("/"))
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        `Cannot place secret files under ~/: the sandbox's shell has no absolute HOME (got ${JSON.stringify(home.slice(0, 200))}). Set HOME in the sandbox image or use absolute paths.`,
      );
  }
  const placed: PlacedFile[] = entries
    .map(([requested, file]) => ({
      requested,
      path: requested.startsWith("~/") ? posix.join(home!, requested.slice(2)) : posix.normalize(requested),
      content: file.content,
      mode: file.mode & 0o7777,
    }))
    .sort((a, b) => a.path.localeCompare(b.path));
  const script = [
    "umask 077",
    ...placed.map(({ path, mode }) => {
      const q = shellQuote(path);
      return `mkdir -p -- ${shellQuote(posix.dirname(path))} && : > ${q} && chmod ${mode.toString(8)} ${q}`;
    }),
  ].join(" && ");
  // A subshell keeps the umask out of the agent's shell.
  const prepared = await send(cmdRun(`(${script})`, { hidden: true, timeoutMs: 30_000, blocking: true }));
  if (prepared.observation !== "run" || prepared.extras.metadata.exit_code !== 0) {
    throw new RuntimeError(
      "INTERNAL",
      `Cannot create the secret files ${placed.map((f) => f.requested).join(", ")} in the sandbox: ${outputOf(prepared)}`,
    );
  }
  for (const file of placed) {
    const obs = await send(fileWrite(file.path, file.content));
    if (obs.observation !== "write") {
      throw new RuntimeError(
        "INTERNAL",
        `Cannot write the secret file ${file.requested} in the sandbox: ${outputOf(obs)}`,
      );
    }
  }
}
