// Longer than 400 lines on purpose: one state machine (idle, running, waiting for input, timed out, dead)
// over one bash process; the parts that are not state (command splitting, output buffering, PS1 markers)
// live in their own modules.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  accessSync,
  chownSync,
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { MarkerScanner } from "./marker-scanner.js";
import { OutputBuffer } from "./output-buffer.js";
import { childrenOf, killGroup, killSession } from "./process-tree.js";

/** How to start a {@link BashSession}. */
export interface BashSessionOptions {
  /** The bash executable. */
  shellPath: string;
  /** Directory the shell starts in (must exist). */
  cwd: string;
  /** Environment of the shell (used as is). */
  env: Record<string, string>;
  /** Run the shell as this uid/gid (only when the server is root). */
  uid?: number;
  gid?: number;
  /** Give up when the shell is not ready within this many ms. @default 10000 */
  startTimeoutMs?: number;
}

/** State reported by the marker printed after every command. */
export interface CommandMetadata {
  exitCode: number;
  /** `$!`: the last background job's pid, -1 when none was started. */
  pid: number;
  workingDir: string;
  /** `$PATH` of the shell when the command ended (to resolve `python`). */
  pathEnv: string;
}

/** Why {@link BashSession.wait} returned. */
export type WaitStatus = "completed" | "no_change_timeout" | "hard_timeout" | "exited";

/** The outcome of {@link BashSession.wait}. */
export interface WaitResult {
  status: WaitStatus;
  /** Output since the previous observation (trailing whitespace not yet stripped). */
  output: string;
  /** Set when `status` is `completed`. */
  metadata?: CommandMetadata;
  /** Set when `status` is `exited`: the shell's exit code (128 + n after a signal). */
  shellExitCode?: number;
}

/** Options of {@link BashSession.wait}. */
export interface WaitOptions {
  /** Return after this long in total (the action's hard timeout); undefined waits without limit. */
  hardTimeoutMs?: number;
  /** Return after this long without new output; undefined disables it (blocking commands). */
  noChangeTimeoutMs?: number;
  /** Keep everything (hidden commands) instead of the 30,000-character head and tail. */
  untruncated?: boolean;
}

/** Keys sent with `is_input`: `C-` plus one character. */
export const KEY_PATTERN = /^C-[a-zA-Z@[\\\]^_]$/;

interface Waiter {
  resolve: (result: WaitResult) => void;
  options: WaitOptions;
  hardTimer?: NodeJS.Timeout;
  quietTimer?: NodeJS.Timeout;
}

/**
 * One persistent bash process driven without a terminal: commands are sent on bash's stdin as
 * `eval $'<command>' <stdin-fifo` followed by a marker function that prints the exit code, `$!`, `$PWD` and
 * `$PATH` behind a random nonce. The observation returns the moment the marker arrives (no polling).
 * Job control (`set -m`) gives every job its own process group so C-c / C-z reach only the foreground job.
 * Each command reads a FIFO as its stdin: `is_input` writes to it and C-d closes it (EOF).
 */
export class BashSession {
  readonly #proc: ChildProcessWithoutNullStreams;
  readonly #nonce = randomBytes(12).toString("hex");
  readonly #scanner: MarkerScanner;
  readonly #buffer = new OutputBuffer();
  readonly #dir: string;
  readonly #fifo: string | undefined;
  /** Where the marker function leaves `jobs -n` (job state changes) for us to filter. */
  readonly #jobsFile: string;
  #stdinFd = -1;
  #seq = 0;
  #running = false;
  #completion: CommandMetadata | undefined;
  #waiter: Waiter | undefined;
  #exit: { code: number } | undefined;
  #exitWaiters: (() => void)[] = [];
  #closed = false;
  /** Process groups of background jobs when the current command started (not targets of C-c). */
  #backgroundGroups = new Set<number>();
  #lastBackgroundPid = -1;
  #cwd: string;
  #pathEnv: string;
  #readyResolve: ((m: CommandMetadata) => void) | undefined;
  readonly #outputListeners = new Set<(text: string) => void>();
  /** One decoder per pipe so a UTF-8 character split across reads is emitted whole. */
  readonly #stdoutDecoder = new StringDecoder("utf8");
  readonly #stderrDecoder = new StringDecoder("utf8");

  private constructor(options: BashSessionOptions) {
    this.#cwd = options.cwd;
    this.#pathEnv = options.env.PATH ?? "";
    this.#dir = mkdtempSync(join(tmpdir(), "ar-shell-"));
    this.#fifo = makeFifo(join(this.#dir, "stdin"));
    this.#jobsFile = join(this.#dir, "jobs");
    if (options.uid !== undefined) {
      chownSync(this.#dir, options.uid, options.gid ?? options.uid);
      if (this.#fifo) chownSync(this.#fifo, options.uid, options.gid ?? options.uid);
    }
    this.#scanner = new MarkerScanner(
      this.#nonce,
      (chunk) => this.#onOutput(chunk, this.#stdoutDecoder),
      (fields) => this.#onMarker(fields),
    );
    this.#proc = spawn(options.shellPath, ["--norc", "--noprofile"], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
      ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}),
    });
    this.#proc.stdout.on("data", (chunk: Buffer) => this.#scanner.push(chunk));
    this.#proc.stderr.on("data", (chunk: Buffer) => this.#onOutput(chunk, this.#stderrDecoder));
    this.#proc.stdin.on("error", () => {
      // EPIPE after the shell died: reported through the exit event.
    });
    this.#proc.on("error", () => this.#onExit(127));
    this.#proc.on("exit", (code, signal) => this.#onExit(code ?? 128 + signalNumber(signal)));
  }

  /**
   * Starts bash (no rc files) and resolves once it answered its first marker.
   * Throws UNAVAILABLE when bash cannot be started.
   */
  static async start(options: BashSessionOptions): Promise<BashSession> {
    const session = new BashSession(options);
    const start = session.#script();
    const ready = new Promise<CommandMetadata>((res) => {
      session.#readyResolve = res;
    });
    const exited = session.waitForExit().then(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((res) => {
      timer = setTimeout(() => res("timeout"), options.startTimeoutMs ?? 10_000);
    });
    session.#proc.stdin.write(start);
    const result = await Promise.race([ready, exited, timeout]);
    clearTimeout(timer);
    if (result === undefined || result === "timeout") {
      const output = session.#buffer.text().trim();
      session.close();
      throw new RuntimeError(
        "UNAVAILABLE",
        `Could not start the shell ${JSON.stringify(options.shellPath)} in ${options.cwd}` +
          (result === "timeout" ? " (no answer within the start timeout)" : " (it exited)") +
          (output ? `: ${output.slice(0, 500)}` : "") +
          ". Check that bash is installed and the working directory is accessible.",
      );
    }
    session.#buffer.clear();
    session.#applyMetadata(result);
    return session;
  }

  /** The shell's pid (also its process group and session id). */
  get pid(): number {
    return this.#proc.pid ?? -1;
  }

  /** True while a command has been sent and its marker has not arrived. */
  get running(): boolean {
    return this.#running && this.#exit === undefined;
  }

  /** True while a command runs, or ended after its last observation without being observed since. */
  get hasPendingCommand(): boolean {
    return this.running || this.#completion !== undefined;
  }

  /** True once bash has exited. */
  get exited(): boolean {
    return this.#exit !== undefined;
  }

  /** The shell's exit code once it exited. */
  get exitCode(): number | undefined {
    return this.#exit?.code;
  }

  /** The working directory reported by the last marker. */
  get cwd(): string {
    return this.#cwd;
  }

  /** `$PATH` reported by the last marker. */
  get pathEnv(): string {
    return this.#pathEnv;
  }

  /** `$!` reported by the last marker, -1 before any background job. */
  get lastBackgroundPid(): number {
    return this.#lastBackgroundPid;
  }

  /** True when stdin of commands is a FIFO (is_input and C-d work). */
  get hasInput(): boolean {
    return this.#fifo !== undefined;
  }

  /** Sends a command; the caller checked that nothing runs. Output collected so far is kept. */
  startCommand(command: string): void {
    if (this.running)
      throw new RuntimeError("FAILED_PRECONDITION", "A command is already running in this shell");
    if (this.#exit) throw new RuntimeError("DISCONNECTED", "The shell has exited");
    this.#seq++;
    this.#running = true;
    if (this.#completion) {
      // A command that timed out and ended unobserved: its leftover output is dropped (as a terminal clears).
      this.#completion = undefined;
      this.#buffer.clear();
    }
    this.#backgroundGroups = new Set();
    if (this.#lastBackgroundPid !== -1) {
      for (const child of childrenOf(this.pid))
        if (child.pgid !== this.pid) this.#backgroundGroups.add(child.pgid);
    }
    let redirect = "</dev/null";
    if (this.#fifo) {
      this.#openStdin();
      redirect = `<${ansiC(this.#fifo)}`;
    }
    this.#proc.stdin.write(`eval -- ${ansiC(command)} ${redirect}\n{ __ar_m ${this.#seq}; } 2>/dev/null\n`);
  }

  /**
   * Waits until the running command ends, the shell exits, or a timeout fires, and returns the output
   * collected since the previous observation (which is then forgotten).
   */
  wait(options: WaitOptions): Promise<WaitResult> {
    if (this.#waiter) throw new RuntimeError("FAILED_PRECONDITION", "Already waiting on this shell");
    return new Promise<WaitResult>((resolvePromise) => {
      const waiter: Waiter = { resolve: resolvePromise, options };
      this.#waiter = waiter;
      if (this.#exit) return this.#finish("exited");
      if (this.#completion || !this.#running) return this.#finish("completed");
      if (options.hardTimeoutMs !== undefined) {
        waiter.hardTimer = setTimeout(() => this.#finish("hard_timeout"), Math.max(0, options.hardTimeoutMs));
      }
      this.#armQuietTimer();
    });
  }

  /** Output collected since the previous observation, without waiting (forgotten afterwards). */
  takeOutput(untruncated = false): string {
    const text = this.#buffer.text(untruncated);
    this.#buffer.clear();
    return text;
  }

  /** Writes `text` to the running command's stdin. Returns false when the program is not reading it. */
  sendInput(text: string): boolean {
    if (this.#stdinFd < 0) return false;
    const data = Buffer.from(text, "utf8");
    try {
      let off = 0;
      while (off < data.length) off += writeSync(this.#stdinFd, data, off, data.length - off);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends a key like a terminal would: C-c interrupts and C-z stops the foreground job (its process
   * groups), C-d closes its stdin (EOF), any other `C-x` writes that control character. The echo a
   * terminal shows (`^C`, `^Z`) is added to the output.
   */
  sendKey(key: string): void {
    const letter = key.slice(2).toLowerCase();
    if (letter === "c") {
      this.#buffer.append(Buffer.from("^C\n"));
      this.#signalForeground("SIGINT", true);
    } else if (letter === "z") {
      this.#buffer.append(Buffer.from("^Z\n"));
      this.#signalForeground("SIGTSTP", false);
    } else if (letter === "d") {
      this.#closeStdin();
    } else if (letter === "\\") {
      this.#signalForeground("SIGQUIT", false);
    } else {
      const code = key.charCodeAt(2) & 0x1f;
      this.sendInput(String.fromCharCode(code));
    }
  }

  /**
   * Subscribes to the running command's new visible output as it appears (markers excluded, UTF-8
   * characters never split). Returns the unsubscribe function. A throwing listener is ignored.
   */
  onOutput(listener: (text: string) => void): () => void {
    this.#outputListeners.add(listener);
    return () => {
      this.#outputListeners.delete(listener);
    };
  }

  /** Resolves once bash has exited. */
  waitForExit(): Promise<void> {
    if (this.#exit) return Promise.resolve();
    return new Promise((res) => this.#exitWaiters.push(res));
  }

  /** Kills every process group of the shell's session and removes its FIFO. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeStdin();
    const pid = this.#proc.pid;
    if (pid !== undefined) killSession(pid, "SIGKILL");
    this.#proc.stdin.destroy();
    rmSync(this.#dir, { recursive: true, force: true });
    if (this.#waiter) this.#finish("exited");
  }

  #script(): string {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash parameter expansion, not a JS template
    const fields = ["$__ar_nonce", "$1", "$e", "${!:--1}", "$PWD", "$PATH"].map((f) => `"${f}"`).join(" ");
    return [
      "exec 2>&1 19>&1",
      "set -m",
      "shopt -s expand_aliases",
      `__ar_nonce=${this.#nonce}`,
      `__ar_jf=${ansiC(this.#jobsFile)}`,
      "__ar_int=",
      // A SIGINT sent to the shell itself (C-c while a builtin loop runs) breaks loops, like a terminal.
      "trap '__ar_int=1; break 1000 2>/dev/null' INT",
      `__ar_m() { local e=$?; [ -n "\${__ar_int:-}" ] && e=130; __ar_int=; jobs -n >"$__ar_jf" 2>/dev/null; printf '\\036%s\\037%s\\037%s\\037%s\\037%s\\037%s\\036\\n' ${fields} >&19; }`,
      "{ __ar_m 0; } 2>/dev/null",
      "",
    ].join("\n");
  }

  #onOutput(chunk: Buffer, decoder: StringDecoder): void {
    this.#buffer.append(chunk);
    if (this.#waiter) this.#armQuietTimer();
    if (this.#outputListeners.size === 0) return;
    const text = decoder.write(chunk);
    if (text) this.#emitOutput(text);
  }

  #emitOutput(text: string): void {
    for (const listener of this.#outputListeners) {
      try {
        listener(text);
      } catch {
        // a listener's failure must not break the shell
      }
    }
  }

  #onMarker(fields: string[]): void {
    const [seqText, exitText, pidText, pwd, pathEnv] = fields;
    const metadata: CommandMetadata = {
      exitCode: toInt(exitText),
      pid: toInt(pidText),
      workingDir: pwd ?? this.#cwd,
      pathEnv: pathEnv ?? this.#pathEnv,
    };
    const seq = Number(seqText);
    if (seq === 0 && this.#readyResolve) {
      this.#readyResolve(metadata);
      this.#readyResolve = undefined;
      return;
    }
    if (seq !== this.#seq) return;
    this.#appendJobNotices();
    this.#applyMetadata(metadata);
    this.#running = false;
    this.#completion = metadata;
    this.#releaseStdin();
    if (this.#waiter) this.#finish("completed");
  }

  /**
   * Adds what a terminal would show after the command: stopped and finished jobs ("[1]+  Stopped  sleep 20",
   * "[1]+  Done  sleep 1"). Newly started background jobs ("Running") are left out.
   */
  #appendJobNotices(): void {
    let text: string;
    try {
      text = readFileSync(this.#jobsFile, "utf8");
    } catch {
      return;
    }
    const lines = text.split("\n").filter((l) => l && !/^\[\d+\][+-]?\s+Running\s/.test(l));
    if (lines.length === 0) return;
    const lead = this.#buffer.totalBytes > 0 && !this.#buffer.endsWithNewline ? "\n" : "";
    this.#buffer.append(Buffer.from(`${lead}${lines.join("\n")}\n`));
  }

  #applyMetadata(m: CommandMetadata): void {
    this.#cwd = m.workingDir;
    this.#pathEnv = m.pathEnv;
    this.#lastBackgroundPid = m.pid;
  }

  #onExit(code: number): void {
    if (this.#exit) return;
    this.#exit = { code };
    this.#running = false;
    this.#closeStdin();
    // Background jobs lose their terminal, as when a terminal window closes.
    const pid = this.#proc.pid;
    if (pid !== undefined && !this.#closed) {
      killSession(pid, "SIGHUP");
      setTimeout(() => killSession(pid, "SIGKILL"), 1000).unref();
    }
    // Let output still in the pipe arrive before answering.
    const done = () => {
      this.#scanner.flush();
      for (const w of this.#exitWaiters.splice(0)) w();
      if (this.#waiter) this.#finish("exited");
    };
    if (this.#proc.stdout.readableEnded) done();
    else {
      const t = setTimeout(done, 100);
      this.#proc.stdout.once("end", () => {
        clearTimeout(t);
        done();
      });
    }
  }

  #armQuietTimer(): void {
    const waiter = this.#waiter;
    if (!waiter || waiter.options.noChangeTimeoutMs === undefined) return;
    if (waiter.quietTimer) waiter.quietTimer.refresh();
    else
      waiter.quietTimer = setTimeout(
        () => this.#finish("no_change_timeout"),
        waiter.options.noChangeTimeoutMs,
      );
  }

  #finish(status: WaitStatus): void {
    const waiter = this.#waiter;
    if (!waiter) return;
    this.#waiter = undefined;
    clearTimeout(waiter.hardTimer);
    clearTimeout(waiter.quietTimer);
    const result: WaitResult = { status, output: this.takeOutput(waiter.options.untruncated) };
    if (status === "completed" && this.#completion) {
      result.metadata = this.#completion;
      this.#completion = undefined;
    }
    if (status === "exited") result.shellExitCode = this.#exit?.code ?? -1;
    waiter.resolve(result);
  }

  /**
   * Signals the foreground job. Without a terminal there is no foreground process group to ask for, so the
   * targets are the shell's child groups that were not background jobs when the command started (all child
   * groups if none, e.g. after `fg`); with no child at all, the shell itself (a builtin loop) for SIGINT.
   */
  #signalForeground(signal: NodeJS.Signals, shellFallback: boolean): void {
    const children = childrenOf(this.pid);
    let targets = children.filter((c) => !this.#backgroundGroups.has(c.pgid));
    if (targets.length === 0) targets = children;
    const groups = new Set<number>();
    for (const child of targets) {
      if (child.pgid === this.pid) {
        // A subshell without its own group (command substitution): signal the process only.
        try {
          process.kill(child.pid, signal);
        } catch {
          // gone
        }
      } else groups.add(child.pgid);
    }
    for (const g of groups) killGroup(g, signal);
    if (targets.length === 0 && shellFallback) {
      try {
        process.kill(this.pid, signal);
      } catch {
        // gone
      }
    }
  }

  #openStdin(): void {
    if (this.#stdinFd >= 0 || !this.#fifo) return;
    // O_RDWR never blocks on a FIFO (Linux) and keeps it open until C-d or the command's end.
    this.#stdinFd = openSync(this.#fifo, constants.O_RDWR | constants.O_NONBLOCK);
  }

  /** After a command: close our end so nothing typed for one command leaks into the next. */
  #releaseStdin(): void {
    this.#closeStdin();
  }

  #closeStdin(): void {
    if (this.#stdinFd < 0) return;
    try {
      closeSync(this.#stdinFd);
    } catch {
      // already closed
    }
    this.#stdinFd = -1;
  }
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

/** Finds `name` on a `PATH` like `which` does ("" when absent). Relative entries resolve against `cwd`. */
export function which(name: string, pathEnv: string, cwd: string): string {
  for (const dir of pathEnv.split(":")) {
    if (!dir) continue;
    const candidate = isAbsolute(dir) ? join(dir, name) : resolve(cwd, dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return "";
}

function makeFifo(path: string): string | undefined {
  const r = spawnSync("mkfifo", ["-m", "600", path], { stdio: "ignore" });
  return r.status === 0 ? path : undefined;
}

function toInt(text: string | undefined): number {
  const n = Number.parseInt(text ?? "", 10);
  return Number.isFinite(n) ? n : -1;
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
  return signal ? (numbers[signal] ?? 0) : 0;
}
