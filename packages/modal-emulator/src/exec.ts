import type { ChildProcess } from "node:child_process";
import { OutputBuffer } from "./output-buffer.js";

/** How a process ended: an exit code, or the signal that killed it. */
export interface ExitStatus {
  code?: number;
  signal?: number;
}

/** Where stdin bytes go. */
export interface StdinTarget {
  write(data: Buffer): void;
  end(): void;
}

/** Result of an offset-addressed stdin write. */
export type StdinWriteResult = { ok: true } | { ok: false; reason: string };

/**
 * Offset-addressed stdin: writes at an offset already written are skipped (retries are idempotent), a gap is
 * an error, `eof` closes the stream.
 */
export class StdinSink {
  #written = 0;
  #closed = false;
  readonly #target: StdinTarget;

  constructor(target: StdinTarget) {
    this.#target = target;
  }

  /** Bytes accepted so far. */
  get bytesWritten(): number {
    return this.#written;
  }

  /** True once EOF was written. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Writes `data` that starts at `offset`; `eof` closes stdin afterwards. */
  write(offset: number, data: Buffer, eof: boolean): StdinWriteResult {
    if (offset > this.#written) {
      return {
        ok: false,
        reason: `stdin write at offset ${offset} leaves a gap (${this.#written} bytes written)`,
      };
    }
    const fresh = data.subarray(Math.min(data.length, this.#written - offset));
    if (fresh.length > 0) {
      if (this.#closed) return { ok: false, reason: "stdin is already closed" };
      this.#target.write(fresh);
      this.#written += fresh.length;
    }
    if (eof) this.close();
    return { ok: true };
  }

  /** Closes stdin (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#target.end();
  }
}

/** A stdin target that feeds a child process and ignores EPIPE once it has exited. */
export function childStdin(child: ChildProcess): StdinTarget {
  child.stdin?.on("error", () => {});
  return {
    write: (data) => {
      if (child.stdin && !child.stdin.destroyed) child.stdin.write(data);
    },
    end: () => {
      if (child.stdin && !child.stdin.destroyed) child.stdin.end();
    },
  };
}

/** What an exec needs in order to be killed. */
export type KillFn = (signal: NodeJS.Signals) => void;

/**
 * One `TaskExecStart`: its output (kept whole from the start, so readers may open after it exited), its stdin
 * and its exit status.
 */
export class ExecRecord {
  readonly execId: string;
  readonly stdout = new OutputBuffer();
  readonly stderr = new OutputBuffer();
  readonly stdin: StdinSink;
  readonly startedAt = Date.now();
  #status: ExitStatus | undefined;
  readonly #exitWaiters = new Set<() => void>();
  #kill: KillFn;

  constructor(execId: string, stdin: StdinTarget, kill: KillFn) {
    this.execId = execId;
    this.stdin = new StdinSink(stdin);
    this.#kill = kill;
  }

  /** The exit status, once the process ended. */
  get status(): ExitStatus | undefined {
    return this.#status;
  }

  /** Replaces how the process is killed (set once it is spawned). */
  setKill(kill: KillFn): void {
    this.#kill = kill;
  }

  /** Sends `signal` to the exec's process group. */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.#status === undefined) this.#kill(signal);
  }

  /** Records the exit status and ends both output streams. */
  finish(status: ExitStatus): void {
    if (this.#status !== undefined) return;
    this.#status = status;
    this.stdout.close();
    this.stderr.close();
    for (const w of [...this.#exitWaiters]) w();
  }

  /** Resolves with the exit status, or `undefined` if `signal` aborts first. */
  wait(signal?: AbortSignal): Promise<ExitStatus | undefined> {
    if (this.#status !== undefined || signal?.aborted) return Promise.resolve(this.#status);
    return new Promise((resolve) => {
      const done = (): void => {
        this.#exitWaiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve(this.#status);
      };
      this.#exitWaiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}

/** The signal number of a Node signal name (`SIGKILL` -> 9). */
export function signalNumber(name: NodeJS.Signals | null): number | undefined {
  if (name === null) return undefined;
  const table: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGABRT: 6,
    SIGKILL: 9,
    SIGUSR1: 10,
    SIGSEGV: 11,
    SIGUSR2: 12,
    SIGPIPE: 13,
    SIGALRM: 14,
    SIGTERM: 15,
  };
  return table[name] ?? 9;
}

/** Kills a process group, ignoring "no such process". */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
