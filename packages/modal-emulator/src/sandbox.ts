// Over 400 lines: one sandbox's process, stdio, execs, tunnels and the timers that end it share its state
// (activity for the idle timeout, the namespace pid, moved ports); isolation, tunnels and execs' own
// bookkeeping live in isolation.ts, tunnels.ts and exec.ts.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import type { Logger } from "@agent-runtime/runtime-core";
import {
  childStdin,
  ExecRecord,
  type ExitStatus,
  killGroup,
  StdinSink,
  type StdinWriteResult,
} from "./exec.js";
import { isFsToolCommand, startFsToolExec } from "./fs-tool.js";
import { moveNamedPorts } from "./host-ports.js";
import { type HostView, parseChildPid, waitForNamespaceSetup } from "./isolation.js";
import { OutputBuffer } from "./output-buffer.js";
import {
  type PortRequest,
  type Relay,
  startRelay,
  type TunnelInfo,
  TunnelSet,
  type Upstream,
} from "./tunnels.js";

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

/** What a sandbox needs from the emulator around it. */
export interface SandboxContext {
  view: HostView;
  /** This sandbox's root directory on the host. */
  root: string;
  /** Directory for the tunnel relay's unix sockets (kept short: socket paths are limited to 107 bytes). */
  socketDir: string;
  privateDirs: readonly string[];
  baseEnv: Record<string, string>;
  bindHost: string;
  tls: { certPem: string; keyPem: string };
  maxOutputBytes: number;
  keepRoot: boolean;
  /** Strict mode: reset tunnel connections the sandbox's server refuses (see tunnels.ts). */
  strict: boolean;
  logger: Logger;
  onFinished(sandbox: SandboxRecord): void;
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

function signalNumber(signal: NodeJS.Signals | null): number | undefined {
  if (signal === null) return undefined;
  return (osConstants.signals as Record<string, number>)[signal] ?? 9;
}

/**
 * One sandbox: a process group (under bwrap with its own root, network, PID and IPC namespaces, or plain on
 * the host), its stdio, execs, tunnels and the timers that end it (timeout, idle timeout).
 */
export class SandboxRecord {
  readonly spec: SandboxSpec;
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  readonly execs = new Map<string, ExecRecord>();
  tunnels: TunnelInfo[] = [];
  result: SandboxResult | undefined;
  finishedAt: number | undefined;
  readonly startedAt = Date.now() / 1000;

  readonly #ctx: SandboxContext;
  #child: ChildProcess | undefined;
  #nsPid: number | undefined;
  readonly #ready: Promise<void>;
  #resolveReady: () => void = () => {};
  #rejectReady: (err: Error) => void = () => {};
  #stdinV2: StdinSink | undefined;
  /** Isolation "none": container ports the command names, moved to free host ports (see moveNamedPorts). */
  #hostPorts = new Map<number, number>();
  /** Isolation "none": environment variables rewritten for moved ports (execs see them too). */
  #movedEnv: Record<string, string> = {};
  #stdinV1Index = 0;
  #tunnelSet: TunnelSet | undefined;
  #relay: Relay | undefined;
  #cause: SandboxResult | undefined;
  #timeoutTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #activeExecs = 0;
  #tunnelConnections = 0;
  readonly #finishWaiters = new Set<() => void>();
  #finalizing = false;
  #markFinalized: () => void = () => {};
  readonly #finalized = new Promise<void>((resolve) => {
    this.#markFinalized = resolve;
  });

  constructor(spec: SandboxSpec, ctx: SandboxContext) {
    this.spec = spec;
    this.#ctx = ctx;
    this.stdout = new OutputBuffer(ctx.maxOutputBytes);
    this.stderr = new OutputBuffer(ctx.maxOutputBytes);
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
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

  /** This sandbox's root directory on the host. */
  get root(): string {
    return this.#ctx.root;
  }

  /** Isolation "none": the host port a container port was moved to, when the command named it. */
  hostPortOf(containerPort: number): number | undefined {
    return this.#hostPorts.get(containerPort);
  }

  /** Host pid of the main process (bwrap itself under bwrap). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Resolves once the sandbox finished and its root was removed. */
  get finalized(): Promise<void> {
    return this.#finalized;
  }

  /** Starts the main process and opens the tunnels. */
  async start(): Promise<void> {
    // Stopped before it started (the emulator is closing): never spawn.
    if (!this.accepting) return;
    const { view, root } = this.#ctx;
    view.prepareRoot(root, this.#ctx.privateDirs);
    const workdir = this.spec.workdir;
    if (!view.isHostPath(workdir)) mkdirSync(view.toHost(root, workdir).hostPath, { recursive: true });
    let argv = this.spec.command.length > 0 ? this.spec.command : ["sleep", "infinity"];
    if (view.mode === "none" && this.spec.ports.length > 0) {
      const moved = await moveNamedPorts(
        argv,
        this.spec.env,
        this.spec.ports.map((p) => p.port),
      );
      // Stopped while a port was picked: never spawn.
      if (!this.accepting) {
        this.#rejectReady(new Error("sandbox stopped before it started"));
        return;
      }
      argv = moved.argv;
      this.#hostPorts = moved.hostPorts;
      this.#movedEnv = moved.env;
    }
    const env = this.#env({ ...this.spec.env, ...this.#movedEnv });
    let child: ChildProcess;
    if (view.mode === "bwrap") {
      child = spawn(view.bwrapPath, view.bwrapArgs(root, workdir, argv, 3), {
        detached: true,
        env,
        stdio: ["pipe", "pipe", "pipe", "pipe"],
      });
      let info = "";
      const infoStream = child.stdio[3] as NodeJS.ReadableStream | null;
      infoStream?.on("data", (d: Buffer) => {
        info += d.toString();
        const pid = parseChildPid(info);
        if (pid !== undefined && this.#nsPid === undefined) {
          this.#nsPid = pid;
          void waitForNamespaceSetup(pid).then(() => this.#resolveReady());
        }
      });
      infoStream?.on("error", () => {});
    } else {
      const [file, ...args] = argv.map((a) => view.remapArg(root, a));
      child = spawn(file!, args, {
        detached: true,
        env,
        cwd: view.toHost(root, workdir).hostPath,
        stdio: "pipe",
      });
      child.once("spawn", () => this.#resolveReady());
    }
    this.#child = child;
    this.#stdinV2 = new StdinSink(childStdin(child));
    child.stdout?.on("data", (d: Buffer) => this.stdout.write(d));
    child.stderr?.on("data", (d: Buffer) => this.stderr.write(d));
    child.on("error", (err: NodeJS.ErrnoException) => {
      // Spawn failures (no such command) end the sandbox like a failed entrypoint.
      this.stderr.write(Buffer.from(`modal-emulator: cannot start ${argv[0]}: ${err.message}\n`));
      this.#rejectReady(err);
      void this.#finalize(err.code === "ENOENT" ? 127 : 126, null);
    });
    child.on("exit", (code, signal) => {
      this.#rejectReady(new Error("sandbox exited before it was ready"));
      // The container ends with its main process: nothing it started may outlive it.
      killGroup(child.pid, "SIGKILL");
      const fallback = setTimeout(() => void this.#finalize(code, signal), 1000);
      child.once("close", () => {
        clearTimeout(fallback);
        void this.#finalize(code, signal);
      });
    });

    this.#timeoutTimer = setTimeout(
      () => this.stop({ status: GenericStatus.TIMEOUT, exitcode: 124 }),
      this.spec.timeoutSecs * 1000,
    );
    this.#timeoutTimer.unref();
    this.#armIdle();

    if (this.spec.ports.length > 0) {
      if (view.mode === "bwrap") {
        mkdirSync(this.#ctx.socketDir, { recursive: true });
        void this.#ready.then(
          () => {
            if (this.running && this.#nsPid !== undefined) {
              this.#relay = startRelay(
                view.nsenterPath,
                this.#nsPid,
                this.#ctx.socketDir,
                this.spec.ports.map((p) => p.port),
              );
            }
          },
          () => {},
        );
      }
      this.#tunnelSet = new TunnelSet(
        this.#ctx.bindHost,
        this.#ctx.tls,
        (port) => this.#upstream(port),
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
        this.#ctx.strict,
      );
      this.tunnels = await this.#tunnelSet.open(this.spec.ports);
    }
  }

  /** Resolves once the sandbox can run execs (its namespaces exist); rejects if it ended first. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Ends the sandbox with `cause` (terminate, timeout, idle timeout, eviction). No-op once finished. */
  stop(cause: SandboxResult): void {
    if (!this.running || this.#cause) return;
    this.#cause = cause;
    this.#ctx.logger.debug("modal-emulator: stopping sandbox", { sandboxId: this.id, status: cause.status });
    for (const exec of this.execs.values()) exec.kill("SIGKILL");
    if (this.#child?.pid !== undefined && this.#child.exitCode === null && this.#child.signalCode === null) {
      killGroup(this.#child.pid, "SIGKILL");
    } else {
      void this.#finalize(null, "SIGKILL");
    }
  }

  /** Drops tunnel connections (fault injection). */
  cutTunnels(refuseMs: number): void {
    this.#tunnelSet?.cut(refuseMs);
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
    if (!this.#stdinV2) return { ok: false, reason: "sandbox has not started" };
    return this.#stdinV2.write(offset, data, eof);
  }

  /** V1 stdin of the main process, addressed by a 1-based message index (repeats are ignored). */
  writeStdinV1(index: number, data: Buffer, eof: boolean): void {
    this.touch();
    if (!this.#stdinV2 || index <= this.#stdinV1Index) return;
    this.#stdinV1Index = index;
    this.#stdinV2.write(this.#stdinV2.bytesWritten, data, eof);
  }

  /** Starts an exec inside the sandbox (idempotent per exec id). */
  async exec(options: ExecOptions): Promise<ExecRecord> {
    const existing = this.execs.get(options.execId);
    if (existing) return existing;
    const workdir = options.workdir ?? this.spec.workdir;
    let record: ExecRecord;
    if (isFsToolCommand(options.argv)) {
      record = startFsToolExec(options.execId, options.argv, { view: this.#ctx.view, root: this.#ctx.root });
    } else {
      await this.#ready;
      record = this.#spawnExec(options, workdir);
    }
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

  #spawnExec(options: ExecOptions, workdir: string): ExecRecord {
    const { view, root } = this.#ctx;
    const env = this.#env({ ...this.spec.env, ...this.#movedEnv, ...options.env });
    const stdio: ("pipe" | "ignore")[] = [
      "pipe",
      options.stdoutConfig === 0 ? "ignore" : "pipe",
      options.stderrConfig === 0 ? "ignore" : "pipe",
    ];
    let child: ChildProcess;
    if (view.mode === "bwrap") {
      child = spawn(view.nsenterPath, view.nsenterArgs(this.#nsPid!, workdir, options.argv), {
        detached: true,
        env,
        stdio,
      });
    } else {
      const cwd = view.toHost(root, workdir).hostPath;
      const [file, ...args] = options.argv.map((a) => view.remapArg(root, a));
      if (!existsSync(cwd)) {
        const record = new ExecRecord(options.execId, { write: () => {}, end: () => {} }, () => {});
        record.stderr.write(Buffer.from(`modal-emulator: workdir ${workdir} does not exist\n`));
        record.finish({ code: 125 });
        return record;
      }
      child = spawn(file!, args, { detached: true, env, cwd, stdio });
    }
    const record = new ExecRecord(options.execId, childStdin(child), (signal) =>
      killGroup(child.pid, signal),
    );
    child.stdout?.on("data", (d: Buffer) => record.stdout.write(d));
    const errTarget = options.stderrConfig === 2 ? record.stdout : record.stderr;
    child.stderr?.on("data", (d: Buffer) => errTarget.write(d));
    child.on("error", (err: NodeJS.ErrnoException) => {
      record.stderr.write(Buffer.from(`modal-emulator: ${options.argv[0]}: ${err.message}\n`));
      record.finish({ code: err.code === "ENOENT" ? 127 : 126 });
    });
    child.on("close", (code, signal) => {
      const status: ExitStatus = code !== null ? { code } : { signal: signalNumber(signal) ?? 9 };
      record.finish(status);
    });
    return record;
  }

  #env(extra: Record<string, string>): Record<string, string> {
    const { view, root } = this.#ctx;
    const home = view.mode === "bwrap" ? "/root" : view.toHost(root, "/root").hostPath;
    const env: Record<string, string> = { ...this.#ctx.baseEnv, HOME: home, SHLVL: "1" };
    if (view.mode === "none") env["TMPDIR"] = view.toHost(root, "/tmp").hostPath;
    return { ...env, ...extra };
  }

  async #upstream(port: number): Promise<Upstream> {
    if (this.#ctx.view.mode === "none") {
      return { kind: "tcp", host: "127.0.0.1", port: this.#hostPorts.get(port) ?? port };
    }
    await this.#ready;
    // The relay starts right after the namespaces exist; wait for it to listen.
    for (let i = 0; i < 100 && !this.#relay && this.running; i++) await new Promise((r) => setTimeout(r, 10));
    if (!this.#relay) throw new Error("tunnel relay is not running");
    await this.#relay.ready;
    return { kind: "unix", path: `${this.#ctx.socketDir}/${port}.sock` };
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

  async #finalize(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.#finalizing) return;
    this.#finalizing = true;
    const natural: SandboxResult =
      code === 0
        ? { status: GenericStatus.SUCCESS, exitcode: 0 }
        : { status: GenericStatus.FAILURE, exitcode: code ?? 128 + (signalNumber(signal) ?? 9) };
    this.result = this.#cause ?? natural;
    this.finishedAt = Date.now() / 1000;
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#idleTimer);
    this.stdout.close();
    this.stderr.close();
    for (const exec of this.execs.values()) {
      exec.kill("SIGKILL");
      exec.finish({ signal: 9 });
    }
    this.#tunnelSet?.close();
    if (this.#relay) {
      killGroup(this.#relay.child.pid, "SIGKILL");
      this.#relay.child.stdin?.destroy();
    }
    this.#child?.stdin?.destroy();
    this.#ctx.logger.debug("modal-emulator: sandbox finished", {
      sandboxId: this.id,
      status: this.result.status,
      exitcode: this.result.exitcode,
    });
    for (const w of [...this.#finishWaiters]) w();
    this.#ctx.onFinished(this);
    if (!this.#ctx.keepRoot) {
      await rm(this.#ctx.root, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
      await rm(this.#ctx.socketDir, { recursive: true, force: true }).catch(() => {});
    }
    this.#markFinalized();
  }
}
