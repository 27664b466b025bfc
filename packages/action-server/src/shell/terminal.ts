import { which } from "./which.js";

/** How the shell is attached: a pseudo-terminal (through util-linux `script`) or plain pipes. */
export type TerminalKind = "pty" | "pipe";

/** The outcome of {@link findTerminal}. */
export type TerminalSupport =
  | { kind: "pty"; scriptPath: string }
  | { kind: "pipe" /** Why no pty: shown in logs. */; reason: string };

/**
 * Whether shells can get a pseudo-terminal with what the image already has: util-linux `script` (in every
 * Debian-based image, nothing compiled) and `mkfifo` (bash reads its commands from a FIFO, its terminal stays
 * the program's) on `PATH`. Starting the first shell is the real test (no pty device, a `script` without `-e`
 * such as BusyBox's): the caller falls back to pipes when it fails.
 */
export function findTerminal(pathEnv: string, cwd: string): TerminalSupport {
  const scriptPath = which("script", pathEnv, cwd);
  if (!scriptPath) return { kind: "pipe", reason: "no `script` (util-linux) on PATH" };
  if (!which("mkfifo", pathEnv, cwd)) return { kind: "pipe", reason: "no `mkfifo` on PATH" };
  return { kind: "pty", scriptPath };
}
