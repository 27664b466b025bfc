import { join } from "node:path";
import type { DockerEngine } from "@agent-runtime/docker-engine";
import type { Logger } from "@agent-runtime/runtime-core";
import { status } from "@grpc/grpc-js";
import { ContainerSandbox, INSTANCE_LABEL } from "./container-sandbox.js";
import type { EvictionStatus, SandboxFaultTarget } from "./faults.js";
import { GrpcError, notFound } from "./grpc-errors.js";
import type { HostView } from "./isolation.js";
import { GenericStatus, SandboxRecord, type SandboxSpec } from "./sandbox.js";

/** Settings every sandbox shares. */
export interface RegistrySettings {
  view: HostView;
  stateDir: string;
  privateDirs: readonly string[];
  baseEnv: Record<string, string>;
  bindHost: string;
  tls: { certPem: string; keyPem: string };
  maxOutputBytes: number;
  maxFinished: number;
  keepRoots: boolean;
  /** Strict mode: a tunnel connection the sandbox's server does not accept is reset (see tunnels.ts). */
  strict: boolean;
  logger: Logger;
  /** Engine mode: sandboxes are containers of this engine, labelled with this emulator's `instance` id. */
  engine?: { engine: DockerEngine; instance: string };
}

/** A sandbox of either kind: a local process group, or a container (engine mode). */
export type Sandbox = SandboxRecord | ContainerSandbox;

/** All sandboxes of one emulator, by sandbox id and by task id. */
export class SandboxRegistry implements SandboxFaultTarget {
  readonly #settings: RegistrySettings;
  readonly #byId = new Map<string, Sandbox>();
  readonly #byTask = new Map<string, Sandbox>();
  readonly #finishedOrder: string[] = [];
  #lastCreatedAt = 0;
  #counter = 0;
  #closed = false;

  constructor(settings: RegistrySettings) {
    this.#settings = settings;
  }

  /** A creation time (unix seconds) strictly greater than every earlier one: `SandboxList` pages by it. */
  nextCreatedAt(): number {
    const now = Date.now() / 1000;
    this.#lastCreatedAt = now > this.#lastCreatedAt ? now : this.#lastCreatedAt + 0.000001;
    return this.#lastCreatedAt;
  }

  /** Creates and starts a sandbox. */
  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (this.#closed) throw new GrpcError(status.UNAVAILABLE, "the modal emulator is shutting down");
    const n = ++this.#counter;
    const s = this.#settings;
    const sandbox: Sandbox = s.engine
      ? new ContainerSandbox(spec, {
          engine: s.engine.engine,
          instance: s.engine.instance,
          bindHost: s.bindHost,
          tls: s.tls,
          maxOutputBytes: s.maxOutputBytes,
          strict: s.strict,
          logger: s.logger,
          onFinished: (sb) => this.#onFinished(sb),
        })
      : new SandboxRecord(spec, {
          view: s.view,
          root: join(s.stateDir, "sandboxes", spec.sandboxId),
          socketDir: join(s.stateDir, "sk", String(n)),
          privateDirs: s.privateDirs,
          baseEnv: s.baseEnv,
          bindHost: s.bindHost,
          tls: s.tls,
          maxOutputBytes: s.maxOutputBytes,
          keepRoot: s.keepRoots,
          strict: s.strict,
          logger: s.logger,
          onFinished: (sb) => this.#onFinished(sb),
        });
    this.#byId.set(spec.sandboxId, sandbox);
    this.#byTask.set(spec.taskId, sandbox);
    try {
      await sandbox.start();
    } catch (err) {
      sandbox.stop({ status: GenericStatus.INIT_FAILURE, exitcode: 1, exception: String(err) });
      throw err;
    }
    s.logger.debug("modal-emulator: sandbox started", { sandboxId: spec.sandboxId, taskId: spec.taskId });
    return sandbox;
  }

  /** The sandbox with `id`, or NOT_FOUND. */
  get(id: string | undefined): Sandbox {
    const sb = id ? this.#byId.get(id) : undefined;
    if (!sb) throw notFound(`Sandbox ${id ?? "(no id)"} not found`);
    return sb;
  }

  /** The sandbox running task `taskId`, or NOT_FOUND. */
  getByTask(taskId: string | undefined): Sandbox {
    const sb = taskId ? this.#byTask.get(taskId) : undefined;
    if (!sb) throw notFound(`Task ${taskId ?? "(no id)"} not found`);
    return sb;
  }

  /** Every known sandbox (running and remembered finished ones). */
  all(): Sandbox[] {
    return [...this.#byId.values()];
  }

  /** Fault: kill a running sandbox as the platform would. */
  evict(sandboxId: string, status: EvictionStatus): boolean {
    const sb = this.#byId.get(sandboxId);
    if (!sb?.running) return false;
    const code = GenericStatus[status];
    sb.stop({
      status: code,
      exitcode: 137,
      exception: status === "TERMINATED" ? undefined : "Sandbox was evicted (modal-emulator fault injection)",
    });
    return true;
  }

  /** Fault: drop a sandbox's tunnel connections. */
  cutTunnels(sandboxId: string, refuseMs: number): boolean {
    const sb = this.#byId.get(sandboxId);
    if (!sb?.running) return false;
    sb.cutTunnels(refuseMs);
    return true;
  }

  /** Refuses new sandboxes, stops every running one, and waits until they have exited and been cleaned up. */
  async stopAll(): Promise<void> {
    this.#closed = true;
    const running = this.all().filter((sb) => sb.running);
    for (const sb of running) sb.stop({ status: GenericStatus.TERMINATED, exitcode: 137 });
    const cap = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
    await Promise.race([Promise.all(running.map((sb) => sb.finalized)), cap]);
    const engine = this.#settings.engine;
    if (engine) {
      // Whatever a sandbox left behind (a create the engine finished after the emulator gave up on it).
      try {
        const left = await engine.engine.listContainers({
          labels: { [INSTANCE_LABEL]: engine.instance },
          all: true,
        });
        await Promise.all(left.map((c) => engine.engine.removeContainer(c.Id)));
      } catch (err) {
        this.#settings.logger.warn("modal-emulator: removing sandbox containers failed", {
          error: (err as Error).message,
        });
      }
    }
  }

  #onFinished(sb: Sandbox): void {
    this.#finishedOrder.push(sb.spec.sandboxId);
    while (this.#finishedOrder.length > this.#settings.maxFinished) {
      const old = this.#byId.get(this.#finishedOrder.shift()!);
      if (old) {
        this.#byId.delete(old.spec.sandboxId);
        this.#byTask.delete(old.spec.taskId);
      }
    }
  }
}
