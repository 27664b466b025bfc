// Longer than 400 lines on purpose: one state machine (idle, running, waiting for input, timed out, dead)
// over one bash process, on a pty or on pipes; the parts that are not state (command splitting, output
// sinks and screen rendering, the start script and markers, job notices, the pty probe) live in their own modules.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chownSync,
  closeSync,
  constants,
  createWriteStream,
  mkdtempSync,
  openSync,
  rmSync,
  type WriteStream,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RuntimeError, truncateOutput } from "@agent-runtime/runtime-core";
import { readJobNotices } from "./job-notices.js";
import { MarkerScanner } from "./marker-scanner.js";
import { type OutputSink, PipeSink, ScreenSink } from "./output-sink.js";
import { childrenOf, killGroup, killSession } from "./process-tree.js";
import { TERMINAL_SIZE } from "./screen.js";
import { ansiC, makeFifo, shQuote, startScript } from "./shell-script.js";
import type { TerminalKind } from "./terminal.js";

export { ansiC } from "./shell-script.js";
export { which } from "./which.js";

/** How to start a {@link BashSession}. */
export interface BashSessionOptions {
  /** The bash executable. */
  shellPath: string;
  /** Directory the shell starts in (must exist). */
  cwd: string;
  /** Environment of the shell (used as is, except `TERM` on a pty). */
  env: Record<string, string>;
  /** Run the shell as this uid/gid (only when the server is root). */
  uid?: number;
  gid?: number;
  /** Give up when the shell is not ready within this many ms. @default 10000 */
  startTimeoutMs?: number;
  /**
   * util-linux `script`, to run bash on a pseudo-terminal (see `probeTerminal`); without it bash runs on pipes.
   */
  scriptPath?: string;
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
  /** Output since the previous observation (trailing whitespace stripped, cut unless `untruncated`). */
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

/** The terminal type programs see on the pty (what the renderer emulates). */
export const PTY_TERM = "xterm-256color";

interface Waiter {
  resolve: (result: WaitResult) => void;
  options: WaitOptions;
  hardTimer?: NodeJS.Timeout;
  quietTimer?: NodeJS.Timeout;
}

/**
 * One persistent bash process. Commands are sent as `eval $'<command>'` followed by a marker function that
 * prints the exit code, `$!`, `$PWD`, `$PATH` and `$$` behind a random nonce; the observation returns the
 * moment the marker arrives (no polling). Job control (`set -m`) gives every job its own process group.
 *
 * On a pty (`scriptPath` set): util-linux `script` gives bash a pseudo-terminal; bash reads its commands from
 * a FIFO (so the command line is never echoed and has no 4 KiB line limit) and runs each with the terminal as
 * stdin. Input and keys are typed into the terminal (C-c, C-z, C-\ are signals from its line discipline, C-d
 * its end of file), and the output is rendered like a screen ({@link ScreenSink}).
 *
 * On pipes (no `script`): stdout and stderr are one pipe, each command reads a FIFO as stdin (`is_input`
 * writes to it, C-d closes it) and keys are signals sent to the foreground job's process groups.
 */
export class BashSession {
  readonly #proc: ChildProcessWithoutNullStreams;
  readonly #kind: TerminalKind;
  readonly #nonce = randomBytes(12).toString("hex");
  readonly #scanner: MarkerScanner;
  readonly #sink: OutputSink;
  readonly #dir: string;
  /** Pipes: the commands' stdin FIFO. */
  readonly #fifo: string | undefined;
  /** Pty: where bash reads its commands. */
  readonly #commands: WriteStream | undefined;
  /** Where the marker function leaves `jobs -n` (job state changes) and, after a new `$!`, `jobs -l`. */
  readonly #jobsFile: string;
  #stdinFd = -1;
  #seq = 0;
  #running = false;
  #completion: { metadata: CommandMetadata; output: Promise<string> } | undefined;
  #waiter: Waiter | undefined;
  #exit: { code: number } | undefined;
  #exitWaiters: (() => void)[] = [];
  #closed = false;
  /** Pipes: process groups of background jobs when the current command started (not targets of C-c). */
  #backgroundGroups = new Set<number>();
  #lastBackgroundPid = -1;
  /** `$$` from the first marker: on a pty, bash leads its own session (not `script`'s). */
  #shellPid: number | undefined;
  #cwd: string;
  #pathEnv: string;
  #readyResolve: ((m: CommandMetadata) => void) | undefined;

  private constructor(options: BashSessionOptions) {
    this.#cwd = options.cwd;
    this.#pathEnv = options.env.PATH ?? "";
    this.#kind = options.scriptPath ? "pty" : "pipe";
    this.#dir = mkdtempSync(join(tmpdir(), "ar-shell-"));
    this.#jobsFile = join(this.#dir, "jobs");
    const owner =
      options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : undefined;
    if (owner) chownSync(this.#dir, owner.uid, owner.gid);
    const fifo = makeFifo(join(this.#dir, this.#kind === "pty" ? "commands" : "stdin"));
    if (fifo && owner) chownSync(fifo, owner.uid, owner.gid);
    let argv: [string, string[]];
    let env = options.env;
    if (options.scriptPath) {
      if (!fifo) throw new RuntimeError("UNAVAILABLE", "Could not create the shell's command FIFO (mkfifo)");
      // O_RDWR: opening never blocks, and bash sees no end of file while the server lives.
      this.#commands = createWriteStream(fifo, { flags: "r+" });
      this.#commands.on("error", () => {
        // The shell died: reported through the exit event.
      });
      // script runs its command with $SHELL -c: keep it POSIX (dash knows only fds 0-9). fd 9 keeps the
      // terminal; the start script moves it to 18, where each command takes it as stdin.
      const inner = `exec ${shQuote(options.shellPath)} --norc --noprofile -s 9<&0 <${shQuote(fifo)}`;
      argv = [options.scriptPath, ["-qfec", inner, "/dev/null"]];
      env = { ...options.env, TERM: PTY_TERM };
      this.#sink = new ScreenSink(TERMINAL_SIZE, (answer) => this.#type(answer), {
        pause: () => this.#proc.stdout.pause(),
        resume: () => this.#proc.stdout.resume(),
      });
    } else {
      this.#fifo = fifo;
      argv = [options.shellPath, ["--norc", "--noprofile"]];
      this.#sink = new PipeSink();
    }
    this.#scanner = new MarkerScanner(
      this.#nonce,
      (chunk) => this.#onData(chunk, "stdout"),
      (fields) => this.#onMarker(fields),
    );
    this.#proc = spawn(argv[0], argv[1], {
      cwd: options.cwd,
      env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
      ...(owner ?? {}),
    });
    this.#proc.stdout.on("data", (chunk: Buffer) => this.#scanner.push(chunk));
    this.#proc.stderr.on("data", (chunk: Buffer) => this.#onData(chunk, "stderr"));
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
    const ready = new Promise<CommandMetadata>((res) => {
      session.#readyResolve = res;
    });
    const exited = session.waitForExit().then(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((res) => {
      timer = setTimeout(() => res("timeout"), options.startTimeoutMs ?? 10_000);
    });
    session.#send(session.#script());
    const result = await Promise.race([ready, exited, timeout]);
    clearTimeout(timer);
    if (result === undefined || result === "timeout") {
      const output = (await Promise.race([session.#sink.take(), delay(500, "")])).trim();
      session.close();
      throw new RuntimeError(
        "UNAVAILABLE",
        `Could not start the shell ${JSON.stringify(options.shellPath)} in ${options.cwd}` +
          (session.#kind === "pty" ? ` on a pseudo-terminal (${options.scriptPath})` : "") +
          (result === "timeout" ? " (no answer within the start timeout)" : " (it exited)") +
          (output ? `: ${output.slice(0, 500)}` : "") +
          ". Check that bash is installed and the working directory is accessible.",
      );
    }
    session.#sink.clear();
    session.#applyMetadata(result);
    return session;
  }

  /** `pty` when bash runs on a pseudo-terminal, `pipe` otherwise. */
  get terminal(): TerminalKind {
    return this.#kind;
  }

  /** Bash's pid (also its process group and session id). */
  get pid(): number {
    return this.#shellPid ?? this.#proc.pid ?? -1;
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

  /** True when input reaches commands (always on a pty; with pipes only when a FIFO could be made). */
  get hasInput(): boolean {
    return this.#kind === "pty" || this.#fifo !== undefined;
  }

  /** Sends a command; the caller checked that nothing runs. Output collected so far is kept. */
  startCommand(command: string): void {
    if (this.running)
      throw new RuntimeError("FAILED_PRECONDITION", "A command is already running in this shell");
    if (this.#exit) throw new RuntimeError("DISCONNECTED", "The shell has exited");
    this.#seq++;
    this.#running = true;
    // A command that timed out and ended unobserved: its output is dropped (as a terminal clears).
    this.#completion = undefined;
    let redirect = "<&18";
    if (this.#kind === "pipe") {
      this.#backgroundGroups = new Set();
      if (this.#lastBackgroundPid !== -1) {
        for (const child of childrenOf(this.pid))
          if (child.pgid !== this.pid) this.#backgroundGroups.add(child.pgid);
      }
      redirect = "</dev/null";
      if (this.#fifo) {
        this.#openStdin();
        redirect = `<${ansiC(this.#fifo)}`;
      }
    }
    this.#send(`eval -- ${ansiC(command)} ${redirect}\n{ __ar_m ${this.#seq}; } 2>/dev/null\n`);
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
  async takeOutput(untruncated = false): Promise<string> {
    const text = await this.#sink.take();
    return untruncated ? text : truncateOutput(text);
  }

  /**
   * Types `text` and Enter into the running command (a pty's Enter is CR; with pipes a newline into its stdin
   * FIFO). Returns false when it cannot arrive (pipes: the program is not reading its input).
   */
  sendLine(text: string): boolean {
    if (this.#kind === "pty") {
      if (this.#sink instanceof ScreenSink) this.#sink.expectEcho(text);
      return this.#type(`${text}\r`);
    }
    return this.sendInput(`${text}\n`);
  }

  /** Writes `text` as is to the running command's input. Returns false when it cannot arrive. */
  sendInput(text: string): boolean {
    if (this.#kind === "pty") return this.#type(text);
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
   * Sends a key like a terminal would. On a pty: the control character (C-c interrupts and C-z stops the
   * foreground job, C-\ quits it, C-d is end of file, the terminal echoes `^C`/`^Z`). With pipes: C-c, C-z and
   * C-\ signal the foreground job's process groups (`^C`/`^Z` added to the output), C-d closes its stdin, any
   * other key writes its control character.
   */
  sendKey(key: string): void {
    const code = key.charCodeAt(2) & 0x1f;
    if (this.#kind === "pty") {
      this.#type(String.fromCharCode(code));
      return;
    }
    const letter = key.slice(2).toLowerCase();
    if (letter === "c") {
      this.#sink.note("^C\n", false);
      this.#signalForeground("SIGINT", true);
    } else if (letter === "z") {
      this.#sink.note("^Z\n", false);
      this.#signalForeground("SIGTSTP", false);
    } else if (letter === "d") {
      this.#closeStdin();
    } else if (letter === "\\") {
      this.#signalForeground("SIGQUIT", false);
    } else {
      this.sendInput(String.fromCharCode(code));
    }
  }

  /**
   * Subscribes to the running command's new visible output as it appears (markers excluded, UTF-8
   * characters never split; on a pty the rendered text: new lines, the new part of the last line, or `\r`
   * and the rewritten last line). Returns the unsubscribe function. A throwing listener is ignored.
   */
  onOutput(listener: (text: string) => void): () => void {
    return this.#sink.onText(listener);
  }

  /** Resolves once bash has exited. */
  waitForExit(): Promise<void> {
    if (this.#exit) return Promise.resolve();
    return new Promise((res) => this.#exitWaiters.push(res));
  }

  /** Kills every process group of the shell's session and removes its FIFOs. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeStdin();
    if (this.#shellPid !== undefined) killSession(this.#shellPid, "SIGKILL");
    const pid = this.#proc.pid;
    if (pid !== undefined) killSession(pid, "SIGKILL");
    this.#proc.stdin.destroy();
    this.#commands?.destroy();
    rmSync(this.#dir, { recursive: true, force: true });
    if (this.#waiter) this.#finish("exited");
    this.#sink.dispose();
  }

  /** Writes bash's input: the command FIFO on a pty, stdin with pipes. */
  #send(text: string): void {
    if (this.#commands) this.#commands.write(text);
    else this.#proc.stdin.write(text);
  }

  /** Types into the terminal (pty only). */
  #type(text: string): boolean {
    if (this.#exit || this.#proc.stdin.destroyed) return false;
    this.#proc.stdin.write(text);
    return true;
  }

  #script(): string {
    return startScript({ pty: this.#kind === "pty", nonce: this.#nonce, jobsFile: this.#jobsFile });
  }

  #onData(chunk: Buffer, pipe: "stdout" | "stderr"): void {
    if (this.#sink instanceof PipeSink) this.#sink.write(chunk, pipe);
    else this.#sink.write(chunk);
    if (this.#waiter) this.#armQuietTimer();
  }

  #onMarker(fields: string[]): void {
    const [seqText, exitText, pidText, pwd, pathEnv, shellPidText] = fields;
    const metadata: CommandMetadata = {
      exitCode: toInt(exitText),
      pid: toInt(pidText),
      workingDir: pwd ?? this.#cwd,
      pathEnv: pathEnv ?? this.#pathEnv,
    };
    const seq = Number(seqText);
    if (seq === 0 && this.#readyResolve) {
      const shellPid = toInt(shellPidText);
      if (shellPid > 0) this.#shellPid = shellPid;
      this.#readyResolve(metadata);
      this.#readyResolve = undefined;
      return;
    }
    if (seq !== this.#seq) return;
    const notices = readJobNotices(
      this.#jobsFile,
      metadata.pid !== this.#lastBackgroundPid ? metadata.pid : -1,
    );
    if (notices) this.#sink.note(notices, true);
    this.#applyMetadata(metadata);
    this.#running = false;
    // The observation is what was output up to here; anything later belongs to the next command.
    this.#completion = { metadata, output: this.#sink.take() };
    this.#sink.clear();
    this.#releaseStdin();
    if (this.#waiter) this.#finish("completed");
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
    if (!this.#closed) {
      for (const sid of new Set([this.#shellPid, this.#proc.pid])) {
        if (sid === undefined) continue;
        killSession(sid, "SIGHUP");
        setTimeout(() => killSession(sid, "SIGKILL"), 1000).unref();
      }
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
    const completion = status === "completed" ? this.#completion : undefined;
    if (completion) this.#completion = undefined;
    const output = completion ? completion.output : this.#sink.take();
    const exitCode = this.#exit?.code ?? -1;
    void output.then((text) => {
      const result: WaitResult = {
        status,
        output: waiter.options.untruncated ? text : truncateOutput(text),
      };
      if (completion) result.metadata = completion.metadata;
      if (status === "exited") result.shellExitCode = exitCode;
      waiter.resolve(result);
    });
  }

  /**
   * Pipes: signals the foreground job. Without a terminal there is no foreground process group to ask for, so
   * the targets are the shell's child groups that were not background jobs when the command started (all
   * child groups if none, e.g. after `fg`); with no child at all, the shell itself (a builtin loop) for SIGINT.
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

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((res) => setTimeout(() => res(value), ms).unref());
}

function toInt(text: string | undefined): number {
  const n = Number.parseInt(text ?? "", 10);
  return Number.isFinite(n) ? n : -1;
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
  return signal ? (numbers[signal] ?? 0) : 0;
}
