import { spawnSync } from "node:child_process";
import { TERMINAL_SIZE } from "./screen.js";

/**
 * The script a {@link BashSession} sends first: job control, the marker function `__ar_m` (run after every
 * command with its sequence number) and, on a pty, the window size and OpenHands' git alias. The marker prints
 * `\x1e<nonce>\x1f<seq>\x1f<exit>\x1f<$!>\x1f<PWD>\x1f<PATH>\x1f<$$>\x1e\n` on fd 19 (the terminal, or stdout on
 * pipes) after writing `jobs -n` to `jobsFile` (and `jobs -l` to `jobsFile.l` when `$!` changed).
 */
export function startScript(options: { pty: boolean; nonce: string; jobsFile: string }): string {
  const { pty } = options;
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash parameter expansion, not a JS template
  const fields = ["$__ar_nonce", "$1", "$e", "${!:--1}", "$PWD", "$PATH", "$$"]
    .map((f) => `"${f}"`)
    .join(" ");
  // On a pty, lines typed for a command that ended unread would reach the next one: the marker drops them.
  const drain = pty
    ? "if read -t 0 <&18; then while read -r -s -t 0.02 -n 4096 -d '' __ar_x <&18; do :; done; fi; "
    : "";
  return [
    // On a pty, fd 9 is the terminal (see BashSession): moved to 18, where each command takes its stdin.
    pty ? "exec 19>&1 18<&9 9<&-" : "exec 2>&1 19>&1",
    "set -m",
    "shopt -s expand_aliases",
    `__ar_nonce=${options.nonce}`,
    `__ar_jf=${ansiC(options.jobsFile)}`,
    "__ar_bg=-1",
    "__ar_int=",
    // A SIGINT sent to the shell itself (C-c while a builtin loop runs) breaks loops, like a terminal.
    "trap '__ar_int=1; break 1000 2>/dev/null' INT",
    `__ar_m() { local e=$?; [ -n "\${__ar_int:-}" ] && e=130; __ar_int=; jobs -n >"$__ar_jf" 2>/dev/null; if [ "\${!:--1}" != "$__ar_bg" ]; then __ar_bg=\${!:--1}; jobs -l >"$__ar_jf.l" 2>/dev/null; fi; ${drain}printf '\\036%s\\037%s\\037%s\\037%s\\037%s\\037%s\\037%s\\036\\n' ${fields} >&19; }`,
    ...(pty
      ? [
          `stty cols ${TERMINAL_SIZE.cols} rows ${TERMINAL_SIZE.rows} <&18 2>/dev/null`,
          // As OpenHands' server does: git would otherwise open a pager on the terminal and wait.
          `alias git='git --no-pager'`,
        ]
      : []),
    "{ __ar_m 0; } 2>/dev/null",
    "",
  ].join("\n");
}

/** Quotes any string for bash as `$'...'` (newlines, quotes and control characters escaped; NUL dropped). */
export function ansiC(text: string): string {
  let out = "$'";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === "'") out += "\\'";
    else if (ch === "\n") out += "\\n";
    else if (c === 0) continue;
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}'`;
}

/** Quotes for any POSIX shell (`script` runs its command with `$SHELL -c`). */
export function shQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Makes a FIFO readable and writable by its owner only; undefined when `mkfifo` failed (or is missing). */
export function makeFifo(path: string): string | undefined {
  const r = spawnSync("mkfifo", ["-m", "600", path], { stdio: "ignore" });
  return r.status === 0 ? path : undefined;
}
