import { spawnSync } from "node:child_process";
import { which } from "./which.js";

/** How the shell is attached: a pseudo-terminal (through util-linux `script`) or plain pipes. */
export type TerminalKind = "pty" | "pipe";

/** The outcome of {@link probeTerminal}. */
export type TerminalSupport =
  | { kind: "pty"; scriptPath: string }
  | { kind: "pipe" /** Why no pty: shown in logs. */; reason: string };

/**
 * Finds out whether shells can get a pseudo-terminal with what the image already has: util-linux `script`
 * (in every Debian-based image, nothing compiled) must be on `PATH`, open a pty and return its child's exit
 * code (`-e`), and `mkfifo` must exist (the shell reads its commands from a FIFO, its terminal stays the
 * program's). Costs one `script` run (a few ms); call once per server.
 */
export function probeTerminal(pathEnv: string, cwd: string, env: Record<string, string>): TerminalSupport {
  const scriptPath = which("script", pathEnv, cwd);
  if (!scriptPath) return { kind: "pipe", reason: "no `script` (util-linux) on PATH" };
  if (!which("mkfifo", pathEnv, cwd)) return { kind: "pipe", reason: "no `mkfifo` on PATH" };
  const r = spawnSync(scriptPath, ["-qfec", "tty; exit 7", "/dev/null"], {
    cwd,
    env: { ...env, SHELL: "/bin/sh" },
    input: "",
    timeout: 5000,
    encoding: "utf8",
  });
  if (r.status === 7 && r.stdout.includes("/dev/")) return { kind: "pty", scriptPath };
  const detail = (r.stderr || r.stdout || r.error?.message || "").trim().slice(0, 200);
  return {
    kind: "pipe",
    reason: `${scriptPath} could not run a command on a pseudo-terminal (exit ${r.status ?? r.signal})${detail ? `: ${detail}` : ""}`,
  };
}
