// About 400 lines: one container sandbox (create, start, stdio attach, execs, tunnels, timers, exit and removal),
// the engine-mode counterpart of sandbox.ts; exec streams live in container-exec.ts, image builds in engine-images.ts.
import {
  type ContainerCreateBody,
  Demuxer,
  type DockerEngine,
  type ExecStream,
} from "@agent-runtime/docker-engine";
import type { Logger } from "@agent-runtime/runtime-core";
import { failedExec, startEngineExec, stdinOf } from "./container-exec.js";
import { MANAGED_BY, MANAGED_BY_LABEL } from "./engine-images.js";
import { type ExecRecord, StdinSink, type StdinWriteResult } from "./exec.js";
import { isFsToolCommand } from "./fs-tool.js";
import { OutputBuffer } from "./output-buffer.js";
import {
  EXEC_TIMEOUT_EXIT_CODE,
  type ExecOptions,
  GenericStatus,
  type SandboxResult,
  type SandboxSpec,
} from "./sandbox.js";
import { type TunnelInfo, TunnelSet, type Upstream } from "./tunnels.js";

/** The label naming the emulator (one per `startModalEmulator`) that made a container. */
export const INSTANCE_LABEL = "agent-runtime.modal-emulator.instance";
/** The label naming the sandbox a container runs. */
export const SANDBOX_LABEL = "agent-runtime.modal-emulator.sandbox-id";

/** What a container sandbox needs from the emulator around it. */
export interface ContainerContext {
  engine: DockerEngine;
  /** This emulator's id (the value of {@link INSTANCE_LABEL}). */
  instance: string;
  bindHost: string;
  tls: { certPem: string; keyPem: string };
  maxOutputBytes: number;
  /** Strict mode: reset tunnel connections the sandbox's server refuses (see tunnels.ts). */
  strict: boolean;
  logger: Logger;
  onFinished(sandbox: ContainerSandbox): void;
}

/** Far beyond any sandbox timeout (24 h), within what a Node timer takes. */
const WAIT_FOREVER_MS = 2 ** 31 - 1;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * One sandbox as a container of a container engine: the create's command as the container's command (the
 * image's entrypoint is reset), its environment and secrets as the container's, its ports published on
 * 127.0.0.1 behind the emulator's TLS tunnels, execs through the engine's exec API. The container is removed
 * when the sandbox ends, whatever ended it. Same surface as {@link SandboxRecord}.
 */
export class ContainerSandbox {
  readonly spec: SandboxSpec;
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  readonly execs = new Map<string, ExecRecord>();
  tunnels: TunnelInfo[] = [];
  result: SandboxResult | undefined;
  finishedAt: number | undefined;
  readonly startedAt = Date.now() / 1000;
  /** The engine's id of the container, once created. */
  containerId: string | undefined;

  readonly #ctx: ContainerContext;
  readonly #ready: Promise<void>;
  #resolveReady: () => void = () => {};
  #rejectReady: (err: Error) => void = () => {};
  #stdin: StdinSink | undefined;
  #stdinV1Index = 0;
  #attach: ExecStream | undefined;
  /** True while the engine creates the container (a stop then waits for its id). */
  #creating = false;
  readonly #hostPorts = new Map<number, number>();
  #tunnelSet: TunnelSet | undefined;
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

  constructor(spec: SandboxSpec, ctx: ContainerContext) {
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

  get id(): string {
    return this.spec.sandboxId;
  }

  get running(): boolean {
    return this.result === undefined;
  }

  get accepting(): boolean {
    return this.result === undefined && this.#cause === undefined;
  }

  /** Container sandboxes have no root on the host. */
  get root(): string {
    return "";
  }

  /** The published host port of a container port. */
  hostPortOf(containerPort: number): number | undefined {
    return this.#hostPorts.get(containerPort);
  }

  /** No host process of the emulator's own. */
  get pid(): number | undefined {
    return undefined;
  }

  get finalized(): Promise<void> {
    return this.#finalized;
  }

  /** Creates and starts the container, then opens the tunnels. */
  async start(): Promise<void> {
    if (!this.accepting) return;
    const { engine } = this.#ctx;
    const s = this.spec;
    const argv = s.command.length > 0 ? s.command : ["sleep", "infinity"];
    const ports = Object.fromEntries(s.ports.map((p) => [`${p.port}/tcp`, {}]));
    const body: ContainerCreateBody = {
      Image: s.engineImage ?? s.imageId,
      // Modal runs the sandbox's command as given, not through the image's entrypoint.
      Entrypoint: [""],
      Cmd: argv,
      Env: Object.entries(s.env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: s.workdir,
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Labels: {
        [MANAGED_BY_LABEL]: MANAGED_BY,
        [INSTANCE_LABEL]: this.#ctx.instance,
        [SANDBOX_LABEL]: s.sandboxId,
      },
      ExposedPorts: ports,
      HostConfig: {
        PortBindings: Object.fromEntries(
          s.ports.map((p) => [`${p.port}/tcp`, [{ HostIp: "127.0.0.1", HostPort: "" }]]),
        ),
        // Modal's request is a reservation and its max a limit: shares and a soft limit, then hard limits.
        ...(s.milliCpu ? { CpuShares: Math.max(2, Math.round((s.milliCpu * 1024) / 1000)) } : {}),
        ...(s.milliCpuMax ? { NanoCpus: s.milliCpuMax * 1_000_000 } : {}),
        ...(s.memoryMiB ? { MemoryReservation: s.memoryMiB * 1024 * 1024 } : {}),
        ...(s.memoryMiBMax ? { Memory: s.memoryMiBMax * 1024 * 1024 } : {}),
      },
    };
    this.#creating = true;
    try {
      this.containerId = await engine.createContainer(body);
    } finally {
      this.#creating = false;
    }
    if (!this.accepting) return this.#abandon();
    let attachEnded: Promise<void>;
    try {
      const attach = await engine.attachContainer(this.containerId);
      this.#attach = attach;
      this.#stdin = new StdinSink(stdinOf(attach));
      const demux = new Demuxer((kind, data) => (kind === "stderr" ? this.stderr : this.stdout).write(data));
      attach.output.on("data", (c: Buffer) => demux.write(c));
      attach.output.on("error", () => {});
      attachEnded = new Promise<void>((resolve) => {
        attach.output.once("end", resolve);
        attach.output.once("close", resolve);
      });
      if (!this.accepting) return this.#abandon();
      await engine.startContainer(this.containerId);
    } catch (err) {
      // Say an executable that does not exist (Podman says so on attach, Docker on start): the sandbox ends
      // like a failed entrypoint.
      const state = await engine.inspectContainer(this.containerId).catch(() => undefined);
      this.stderr.write(Buffer.from(`modal-emulator: cannot start ${argv[0]}: ${(err as Error).message}\n`));
      this.#rejectReady(err as Error);
      void this.#finalize(state?.State.ExitCode || 127);
      return;
    }
    const info = await engine.inspectContainer(this.containerId);
    for (const p of s.ports) {
      const bound = info?.NetworkSettings?.Ports?.[`${p.port}/tcp`]?.[0]?.HostPort;
      if (bound) this.#hostPorts.set(p.port, Number(bound));
    }
    this.#resolveReady();
    void this.#waitForExit(this.containerId, attachEnded);

    this.#timeoutTimer = setTimeout(
      () => this.stop({ status: GenericStatus.TIMEOUT, exitcode: 124 }),
      s.timeoutSecs * 1000,
    );
    this.#timeoutTimer.unref();
    this.#armIdle();
    if (s.ports.length > 0) {
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
      this.tunnels = await this.#tunnelSet.open(s.ports);
      // Ended while the tunnels opened (say its command exited at once): finalize ran before they existed.
      if (!this.running) {
        this.#tunnelSet.close();
        this.tunnels = [];
      }
    }
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  /** Ends the sandbox with `cause`: its container is removed. No-op once finished. */
  stop(cause: SandboxResult): void {
    if (!this.running || this.#cause) return;
    this.#cause = cause;
    this.#ctx.logger.debug("modal-emulator: stopping sandbox", { sandboxId: this.id, status: cause.status });
    for (const exec of this.execs.values()) exec.kill("SIGKILL");
    // Being created: start() sees the cause once the engine answers, and removes it.
    if (!this.#creating) void this.#finalize(null);
  }

  cutTunnels(refuseMs: number): void {
    this.#tunnelSet?.cut(refuseMs);
  }

  touch(): void {
    this.#armIdle();
  }

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

  writeStdinV2(offset: number, data: Buffer, eof: boolean): StdinWriteResult {
    this.touch();
    if (!this.#stdin) return { ok: false, reason: "sandbox has not started" };
    return this.#stdin.write(offset, data, eof);
  }

  writeStdinV1(index: number, data: Buffer, eof: boolean): void {
    this.touch();
    if (!this.#stdin || index <= this.#stdinV1Index) return;
    this.#stdinV1Index = index;
    this.#stdin.write(this.#stdin.bytesWritten, data, eof);
  }

  /** Runs an exec through the engine's exec API (idempotent per exec id). */
  async exec(options: ExecOptions): Promise<ExecRecord> {
    const existing = this.execs.get(options.execId);
    if (existing) return existing;
    let record: ExecRecord;
    if (isFsToolCommand(options.argv)) {
      record = failedExec(
        options.execId,
        "the filesystem API (sb.filesystem) is not implemented for container-engine sandboxes; use exec (cat, tee) instead",
        1,
      );
    } else {
      await this.#ready;
      record = await startEngineExec(this.#ctx.engine, this.containerId as string, options, {
        workdir: this.spec.workdir,
        running: () => this.running,
      });
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

  async #waitForExit(containerId: string, attachEnded: Promise<void>): Promise<void> {
    let code: number | null = null;
    try {
      const r = await this.#ctx.engine.json<{ StatusCode?: number }>(
        "POST",
        `/containers/${encodeURIComponent(containerId)}/wait`,
        { timeoutMs: WAIT_FOREVER_MS },
        `Waiting for container ${containerId}`,
      );
      code = r?.StatusCode ?? null;
    } catch {
      // Removed (terminate) or the engine went away: the cause says how it ended.
    }
    // The attach stream may still carry the last output.
    await Promise.race([attachEnded, sleep(1000)]);
    await this.#finalize(code);
  }

  async #upstream(port: number): Promise<Upstream> {
    await this.#ready;
    const hostPort = this.#hostPorts.get(port);
    if (hostPort === undefined) throw new Error(`container port ${port} is not published`);
    return { kind: "tcp", host: "127.0.0.1", port: hostPort };
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

  /** Stopped while starting: remove what was made so far. */
  async #abandon(): Promise<void> {
    this.#rejectReady(new Error("sandbox stopped before it started"));
    await this.#finalize(null);
  }

  async #finalize(code: number | null): Promise<void> {
    if (this.#finalizing) return;
    this.#finalizing = true;
    const natural: SandboxResult =
      code === 0
        ? { status: GenericStatus.SUCCESS, exitcode: 0 }
        : { status: GenericStatus.FAILURE, exitcode: code ?? 137 };
    this.result = this.#cause ?? natural;
    this.finishedAt = Date.now() / 1000;
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#idleTimer);
    this.#rejectReady(new Error("sandbox finished"));
    for (const exec of this.execs.values()) {
      exec.kill("SIGKILL");
      exec.finish({ signal: 9 });
    }
    this.#tunnelSet?.close();
    if (this.containerId !== undefined) {
      await this.#ctx.engine.removeContainer(this.containerId).catch((err: unknown) =>
        this.#ctx.logger.warn("modal-emulator: removing a sandbox's container failed", {
          sandboxId: this.id,
          containerId: this.containerId,
          error: (err as Error).message,
        }),
      );
    }
    this.#attach?.close();
    this.stdout.close();
    this.stderr.close();
    this.#ctx.logger.debug("modal-emulator: sandbox finished", {
      sandboxId: this.id,
      status: this.result.status,
      exitcode: this.result.exitcode,
    });
    for (const w of [...this.#finishWaiters]) w();
    this.#ctx.onFinished(this);
    this.#markFinalized();
  }
}
