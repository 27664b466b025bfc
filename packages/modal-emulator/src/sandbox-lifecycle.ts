// What both kinds of sandbox share: the result and how it is waited for, the main process's stdin, exec
// bookkeeping, the timers that end a sandbox (timeout, idle timeout) and its TLS tunnels. How the main process
// and its execs run lives in sandbox.ts (local processes) and container-sandbox.ts (engine containers).
import type { Logger } from "@agent-runtime/runtime-core";
import type { ExecRecord, StdinSink, StdinWriteResult } from "./exec.js";
import { isFsToolCommand } from "./fs-tool.js";
import { OutputBuffer } from "./output-buffer.js";
import { type PortRequest, type TunnelInfo, TunnelSet, type Upstream } from "./tunnels.js";

/** `GenericResult.status` values (GenericStatus). */
export const GenericStatus = {
  UNSPECIFIED: 0,
  SUCCESS: 1,
  FAILURE: 2,
  TERMINATED: 3,
  TIMEOUT: 4,
  INIT_FAILURE: 5,
  INTERNAL_FAILURE: 6,
  IDLE_TIMEOUT: 7,
  MEMORY_MANAGER_EVICTION: 8,
} as const;

/** A `GenericResult` as the emulator sends it. */
export interface SandboxResult {
  status: number;
  exitcode: number;
  exception?: string;
}

/** Everything a sandbox was created with. */
export interface SandboxSpec {
  sandboxId: string;
  v2: boolean;
  taskId: string;
  appId: string;
  appName: string;
  environmentName: string;
  name?: string;
  tags: Map<string, string>;
  imageId: string;
  /** Engine mode: the engine image the sandbox's container runs. */
  engineImage?: string;
  command: string[];
  workdir: string;
  env: Record<string, string>;
  timeoutSecs: number;
  idleTimeoutSecs?: number;
  ports: PortRequest[];
  milliCpu?: number;
  milliCpuMax?: number;
  memoryMiB?: number;
  memoryMiBMax?: number;
  gpu?: string;
  /** Regions the sandbox was pinned to (`scheduler_placement.regions`); recorded, not enforced. */
  regions: string[];
  /** Unix seconds; unique and increasing across sandboxes (`SandboxList` pages by it). */
  createdAt: number;
}

/** Options of one exec. */
export interface ExecOptions {
  execId: string;
  argv: string[];
  workdir?: string;
  env: Record<string, string>;
  timeoutSecs?: number;
  /** 0 devnull, 1 pipe. */
  stdoutConfig: number;
  /** 0 devnull, 1 pipe, 2 merged into stdout. */
  stderrConfig: number;
}

/** Exit code reported for an exec killed by its own `timeoutMs` (as coreutils `timeout` does). */
export const EXEC_TIMEOUT_EXIT_CODE = 124;

/** What every sandbox needs from the emulator around it. */
export interface LifecycleContext {
  bindHost: string;
  tls: { certPem: string; keyPem: string };
  maxOutputBytes: number;
  /** Strict mode: reset tunnel connections the sandbox's server refuses (see tunnels.ts). */
  strict: boolean;
  logger: Logger;
}

/**
 * The state and rules both kinds of sandbox share. A subclass runs the main process and its execs: it sets
 * {@link stdin}, settles {@link ready}, calls {@link armTimers} and {@link openTunnels} once started, ends the
 * main process in {@link endMain}, and finishes with {@link settle} then {@link announce}.
 */
export abstract class SandboxLifecycle {
  readonly spec: SandboxSpec;
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  readonly execs = new Map<string, ExecRecord>();
  tunnels: TunnelInfo[] = [];
  result: SandboxResult | undefined;
  finishedAt: number | undefined;
  readonly startedAt = Date.now() / 1000;

  /** Stdin of the main process, once it started. */
  protected stdin: StdinSink | undefined;
  /** Container ports and the host ports they are reached on, when they differ. */
  protected hostPorts = new Map<number, number>();
  protected tunnelSet: TunnelSet | undefined;
  protected resolveReady: () => void = () => {};
  protected rejectReady: (err: Error) => void = () => {};
  protected markFinalized: () => void = () => {};

  readonly #lifecycleCtx: LifecycleContext;
  readonly #ready: Promise<void>;
  #stdinV1Index = 0;
  #cause: SandboxResult | undefined;
  #timeoutTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #activeExecs = 0;
  #tunnelConnections = 0;
  readonly #finishWaiters = new Set<() => void>();
  #finalizing = false;
  readonly #finalized = new Promise<void>((resolve) => {
    this.markFinalized = resolve;
  });

  constructor(spec: SandboxSpec, ctx: LifecycleContext) {
    this.spec = spec;
    this.#lifecycleCtx = ctx;
    this.stdout = new OutputBuffer(ctx.maxOutputBytes);
    this.stderr = new OutputBuffer(ctx.maxOutputBytes);
    this.#ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.#ready.catch(() => {});
  }

  /** Short id used in logs. */
  get id(): string {
    return this.spec.sandboxId;
  }

  /** True until the main process ended. */
  get running(): boolean {
    return this.result === undefined;
  }

  /** True while running and not being stopped (new execs are accepted). */
  get accepting(): boolean {
    return this.result === undefined && this.#cause === undefined;
  }

  /** Resolves once the sandbox finished and what it held was released. */
  get finalized(): Promise<void> {
    return this.#finalized;
  }

  /** The host port a container port is reached on, when it differs (see {@link hostPorts}). */
  hostPortOf(containerPort: number): number | undefined {
    return this.hostPorts.get(containerPort);
  }

  /** Resolves once the sandbox can run execs; rejects if it ended first. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Ends the sandbox with `cause` (terminate, timeout, idle timeout, eviction). No-op once finished. */
  stop(cause: SandboxResult): void {
    if (!this.running || this.#cause) return;
    this.#cause = cause;
    this.#lifecycleCtx.logger.debug("modal-emulator: stopping sandbox", {
      sandboxId: this.id,
      status: cause.status,
    });
    for (const exec of this.execs.values()) exec.kill("SIGKILL");
    this.endMain();
  }

  /** Drops tunnel connections (fault injection). */
  cutTunnels(refuseMs: number): void {
    this.tunnelSet?.cut(refuseMs);
  }

  /** Marks activity for the idle timeout (stdin writes, router calls). */
  touch(): void {
    this.#armIdle();
  }

  /** Resolves with the result once finished, or `undefined` after `timeoutMs` / when `signal` aborts. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<SandboxResult | undefined> {
    if (this.result || timeoutMs <= 0 || signal?.aborted) return Promise.resolve(this.result);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#finishWaiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve(this.result);
      };
      const timer = setTimeout(done, timeoutMs);
      this.#finishWaiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** V2 stdin of the main process, addressed by offset. */
  writeStdinV2(offset: number, data: Buffer, eof: boolean): StdinWriteResult {
    this.touch();
    if (!this.stdin) return { ok: false, reason: "sandbox has not started" };
    return this.stdin.write(offset, data, eof);
  }

  /** V1 stdin of the main process, addressed by a 1-based message index (repeats are ignored). */
  writeStdinV1(index: number, data: Buffer, eof: boolean): void {
    this.touch();
    if (!this.stdin || index <= this.#stdinV1Index) return;
    this.#stdinV1Index = index;
    this.stdin.write(this.stdin.bytesWritten, data, eof);
  }

  /** Starts an exec inside the sandbox (idempotent per exec id). */
  async exec(options: ExecOptions): Promise<ExecRecord> {
    const existing = this.execs.get(options.execId);
    if (existing) return existing;
    if (isFsToolCommand(options.argv)) return this.#adoptExec(options, this.fsToolExec(options));
    await this.#ready;
    const started = this.startExec(options);
    // A local exec is recorded in the tick it was spawned, as before this class existed (no extra await).
    return this.#adoptExec(options, started instanceof Promise ? await started : started);
  }

  /** Stop was asked: end the main process (the execs were killed already). */
  protected abstract endMain(): void;

  /** An exec of the filesystem tool (see fs-tool.ts), which needs no process in the sandbox. */
  protected abstract fsToolExec(options: ExecOptions): ExecRecord;

  /** Starts an exec's process (the sandbox is ready). */
  protected abstract startExec(options: ExecOptions): ExecRecord | Promise<ExecRecord>;

  /** Where a tunnel to `port` connects. */
  protected abstract upstream(port: number): Promise<Upstream>;

  /** Records a started exec: it keeps the sandbox from idling, and its own timeout ends it. */
  #adoptExec(options: ExecOptions, record: ExecRecord): ExecRecord {
    this.execs.set(options.execId, record);
    this.#activeExecs++;
    this.#armIdle();
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutSecs && options.timeoutSecs > 0) {
      timer = setTimeout(() => {
        record.kill("SIGKILL");
        record.finish({ code: EXEC_TIMEOUT_EXIT_CODE });
      }, options.timeoutSecs * 1000);
      timer.unref();
    }
    void record.wait().then(() => {
      if (timer) clearTimeout(timer);
      this.#activeExecs--;
      this.#armIdle();
    });
    return record;
  }

  /** Starts the timeout and the idle timeout (the main process started). */
  protected armTimers(): void {
    this.#timeoutTimer = setTimeout(
      () => this.stop({ status: GenericStatus.TIMEOUT, exitcode: 124 }),
      this.spec.timeoutSecs * 1000,
    );
    this.#timeoutTimer.unref();
    this.#armIdle();
  }

  /** Opens the TLS tunnels to the spec's ports; open connections keep the sandbox from idling. */
  protected async openTunnels(): Promise<TunnelSet> {
    const tunnelSet = new TunnelSet(
      this.#lifecycleCtx.bindHost,
      this.#lifecycleCtx.tls,
      (port) => this.upstream(port),
      {
        opened: () => {
          this.#tunnelConnections++;
          this.#armIdle();
        },
        closed: () => {
          this.#tunnelConnections--;
          this.#armIdle();
        },
      },
      this.#lifecycleCtx.strict,
    );
    this.tunnelSet = tunnelSet;
    this.tunnels = await tunnelSet.open(this.spec.ports);
    return tunnelSet;
  }

  /**
   * First step of finishing: records the result (the stop's cause, else success for exit code 0 and failure
   * otherwise) and ends the timers, execs and tunnels. False when finishing already began.
   */
  protected settle(exitcode: number): boolean {
    if (this.#finalizing) return false;
    this.#finalizing = true;
    const natural: SandboxResult =
      exitcode === 0
        ? { status: GenericStatus.SUCCESS, exitcode: 0 }
        : { status: GenericStatus.FAILURE, exitcode };
    this.result = this.#cause ?? natural;
    this.finishedAt = Date.now() / 1000;
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#idleTimer);
    for (const exec of this.execs.values()) {
      exec.kill("SIGKILL");
      exec.finish({ signal: 9 });
    }
    this.tunnelSet?.close();
    return true;
  }

  /** Last step of finishing: logs the result and wakes {@link wait}. */
  protected announce(): void {
    const result = this.result as SandboxResult;
    this.#lifecycleCtx.logger.debug("modal-emulator: sandbox finished", {
      sandboxId: this.id,
      status: result.status,
      exitcode: result.exitcode,
    });
    for (const w of [...this.#finishWaiters]) w();
  }

  #armIdle(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const idleSecs = this.spec.idleTimeoutSecs;
    if (!idleSecs || !this.running || this.#activeExecs > 0 || this.#tunnelConnections > 0) return;
    this.#idleTimer = setTimeout(
      () => this.stop({ status: GenericStatus.IDLE_TIMEOUT, exitcode: 0 }),
      idleSecs * 1000,
    );
    this.#idleTimer.unref();
  }
}
