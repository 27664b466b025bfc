// One container sandbox (create, start, stdio attach, execs, exit and removal), the engine-mode counterpart of
// sandbox.ts; what both share (result, stdin, exec bookkeeping, timers, tunnels) lives in sandbox-lifecycle.ts,
// exec streams in container-exec.ts, image builds in engine-images.ts.
import {
  type ContainerCreateBody,
  Demuxer,
  type DockerEngine,
  type ExecStream,
} from "@agent-runtime/docker-engine";
import { failedExec, startEngineExec, stdinOf } from "./container-exec.js";
import { MANAGED_BY, MANAGED_BY_LABEL } from "./engine-images.js";
import { type ExecRecord, StdinSink } from "./exec.js";
import {
  type ExecOptions,
  type LifecycleContext,
  SandboxLifecycle,
  type SandboxSpec,
} from "./sandbox-lifecycle.js";
import type { Upstream } from "./tunnels.js";

/** The label naming the emulator (one per `startModalEmulator`) that made a container. */
export const INSTANCE_LABEL = "agent-runtime.modal-emulator.instance";
/** The label naming the sandbox a container runs. */
export const SANDBOX_LABEL = "agent-runtime.modal-emulator.sandbox-id";

/** What a container sandbox needs from the emulator around it. */
export interface ContainerContext extends LifecycleContext {
  engine: DockerEngine;
  /** This emulator's id (the value of {@link INSTANCE_LABEL}). */
  instance: string;
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
export class ContainerSandbox extends SandboxLifecycle {
  /** The engine's id of the container, once created. */
  containerId: string | undefined;

  readonly #ctx: ContainerContext;
  #attach: ExecStream | undefined;
  /** True while the engine creates the container (a stop then waits for its id). */
  #creating = false;

  constructor(spec: SandboxSpec, ctx: ContainerContext) {
    super(spec, ctx);
    this.#ctx = ctx;
  }

  /** Container sandboxes have no root on the host. */
  get root(): string {
    return "";
  }

  /** No host process of the emulator's own. */
  get pid(): number | undefined {
    return undefined;
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
      this.stdin = new StdinSink(stdinOf(attach));
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
      this.rejectReady(err as Error);
      void this.#finalize(state?.State.ExitCode || 127);
      return;
    }
    const info = await engine.inspectContainer(this.containerId);
    for (const p of s.ports) {
      const bound = info?.NetworkSettings?.Ports?.[`${p.port}/tcp`]?.[0]?.HostPort;
      if (bound) this.hostPorts.set(p.port, Number(bound));
    }
    this.resolveReady();
    void this.#waitForExit(this.containerId, attachEnded);

    this.armTimers();
    if (s.ports.length > 0) {
      const tunnelSet = await this.openTunnels();
      // Ended while the tunnels opened (say its command exited at once): finalize ran before they existed.
      if (!this.running) {
        tunnelSet.close();
        this.tunnels = [];
      }
    }
  }

  /** The filesystem API is not implemented here: the exec fails and says so. */
  protected override fsToolExec(options: ExecOptions): ExecRecord {
    return failedExec(
      options.execId,
      "the filesystem API (sb.filesystem) is not implemented for container-engine sandboxes; use exec (cat, tee) instead",
      1,
    );
  }

  /** Runs an exec through the engine's exec API. */
  protected override startExec(options: ExecOptions): Promise<ExecRecord> {
    return startEngineExec(this.#ctx.engine, this.containerId as string, options, {
      workdir: this.spec.workdir,
      running: () => this.running,
    });
  }

  /** The container is removed; being created, start() sees the cause once the engine answers, and removes it. */
  protected override endMain(): void {
    if (!this.#creating) void this.#finalize(null);
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

  protected override async upstream(port: number): Promise<Upstream> {
    await this.ready();
    const hostPort = this.hostPorts.get(port);
    if (hostPort === undefined) throw new Error(`container port ${port} is not published`);
    return { kind: "tcp", host: "127.0.0.1", port: hostPort };
  }

  /** Stopped while starting: remove what was made so far. */
  async #abandon(): Promise<void> {
    this.rejectReady(new Error("sandbox stopped before it started"));
    await this.#finalize(null);
  }

  async #finalize(code: number | null): Promise<void> {
    if (!this.settle(code ?? 137)) return;
    this.rejectReady(new Error("sandbox finished"));
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
    this.announce();
    this.#ctx.onFinished(this);
    this.markFinalized();
  }
}
