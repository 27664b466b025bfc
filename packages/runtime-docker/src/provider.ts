import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { DockerEngine } from "@agent-runtime/docker-engine";
import {
  type CreateRuntimeInput,
  createPluginInstance,
  definePlugin,
  noopRedactor,
  overridesOf,
  type PluginContext,
  parseCreateRuntimeInput,
  quietLogger,
  type ResolvedSessionOverrides,
  type RuntimeCapabilities,
  RuntimeError,
  type RuntimeHandle,
  type RuntimeProvider,
  resolvePluginOptions,
  type SessionOverrideField,
  WarmPool,
} from "@agent-runtime/runtime-core";
import { DockerRuntime, type DockerServices } from "./docker-runtime.js";
import { toDockerRuntimeError } from "./errors.js";
import { ImageCache, type ResolvedImage, resolveImage } from "./image.js";
import { DockerSandboxInventory } from "./inventory.js";
import { LABELS } from "./naming.js";
import {
  DOCKER_RENAMED_OPTIONS,
  type DockerRuntimeOptions,
  DockerRuntimeOptionsSchema,
  type ResolvedDockerRuntimeOptions,
  validateDockerRuntimeOptions,
} from "./options.js";

/** Per-session override fields runtime-docker honours. */
const SUPPORTED_OVERRIDES = [
  "image",
  "cpuCores",
  "memoryMiB",
  "env",
  "labels",
  "userId",
] as const satisfies readonly SessionOverrideField[];

/** What to do instead, for each override runtime-docker refuses. */
const OVERRIDE_HINTS: Partial<Record<SessionOverrideField, string>> = {
  gpu: "runtime-docker does not request GPUs (capability gpu is off); use the modal backend",
  timeoutMs:
    "docker sandboxes have no lifetime limit; close the runtime when done (a cost plugin can stop it)",
  idleTimeoutMs: "docker sandboxes have no idle timeout; close the runtime when done",
};

const WHAT = "docker runtime options";

/**
 * Creates Docker runtimes: one container per session from an image (built from an image-builder spec through the
 * engine, once per content hash), running the action-server, reached through a unix socket or a port on
 * 127.0.0.1. Implements {@link RuntimeProvider}.
 */
export class DockerRuntimeProvider implements RuntimeProvider {
  readonly backend = "docker";
  readonly capabilities: RuntimeCapabilities;
  readonly supportedOverrides: readonly SessionOverrideField[] = SUPPORTED_OVERRIDES;
  /** runtime-core's `SandboxInventory` of runtime-docker's containers (for a cost plugin's orphan sweeper). */
  readonly inventory: DockerSandboxInventory;
  /** Value of the pool label on this provider's pooled containers. */
  readonly poolId: string;
  readonly #svc: DockerServices;
  readonly #context: PluginContext;
  readonly #image: ResolvedImage;
  readonly #pool: WarmPool<DockerRuntime> | undefined;
  readonly #handedOut = new Set<string>();
  #closed: Promise<void> | undefined;

  constructor(options: ResolvedDockerRuntimeOptions, context: PluginContext) {
    this.#context = context;
    let engine: DockerEngine;
    try {
      engine = new DockerEngine(options.engine !== undefined ? { address: options.engine } : {});
    } catch (err) {
      throw toDockerRuntimeError(err, "engine");
    }
    const connect =
      options.connect ??
      ("socketPath" in engine.endpoint && process.platform === "linux" ? "socket" : "port");
    if (options.network === "none" && connect === "port") {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `Invalid docker runtime options:\n  network: "none" needs connect "socket", which needs an engine on a local unix socket (this one is ${engine.address})`,
      );
    }
    this.#image = resolveImage(options.image, options.baseImage);
    this.#svc = {
      engine,
      options,
      images: new ImageCache(engine, context.logger, options.imageBuildTimeoutMs),
      connect,
      stateBase: options.stateDir ?? join(tmpdir(), "agent-runtime-docker"),
    };
    this.inventory = new DockerSandboxInventory(engine, this.#svc.stateBase);
    this.poolId = `ar-pool-${randomBytes(6).toString("hex")}`;
    this.capabilities = {
      persistentShell: true,
      stdin: true,
      ipython: options.ipython,
      gpu: false,
      pause: false,
      attach: true,
      tunnels: false,
      vscode: false,
      fileTransfer: true,
      networkIsolation: true,
    };
    if (options.pool.size > 0) {
      this.#pool = new WarmPool({
        size: options.pool.size,
        logger: context.logger,
        create: (poolSessionId) => this.#newRuntime(poolSessionId, { poolId: this.poolId }),
      });
      this.#pool.fill();
    }
  }

  /** The parsed options. */
  get options(): ResolvedDockerRuntimeOptions {
    return this.#svc.options;
  }

  /** The engine client (one per provider). */
  get engine(): DockerEngine {
    return this.#svc.engine;
  }

  /** How the host reaches each container's server. */
  get connect(): "socket" | "port" {
    return this.#svc.connect;
  }

  /** Ready containers in the warm pool. */
  get poolReady(): number {
    return this.#pool?.readyCount ?? 0;
  }

  /** Resolves when the engine answers; UNAVAILABLE, naming its address, otherwise. */
  async ping(): Promise<void> {
    await this.#svc.engine.ping().catch((err: unknown) => {
      throw toDockerRuntimeError(err, "Reaching the container engine");
    });
  }

  #newRuntime(
    sessionId: string,
    extra: {
      attachTo?: RuntimeHandle;
      overrides?: ResolvedSessionOverrides;
      poolId?: string;
      image?: ResolvedImage;
    } = {},
  ): DockerRuntime {
    return new DockerRuntime({
      sessionId,
      services: this.#svc,
      image: extra.image ?? this.#image,
      capabilities: this.capabilities,
      context: this.#context,
      ...(extra.attachTo ? { attachTo: extra.attachTo } : {}),
      ...(extra.overrides ? { overrides: extra.overrides } : {}),
      ...(extra.poolId ? { poolId: extra.poolId } : {}),
    });
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        "This docker runtime provider is closed; create a new one.",
      );
  }

  /**
   * A runtime for `input.sessionId`: a ready one from the warm pool when the input keeps the provider's shape,
   * else a new (unconnected) one. Overrides: `image` (a name with the server preinstalled, or an image-builder
   * spec, built through the engine), `cpuCores`, `memoryMiB`, `env` (merged over the provider's), `labels`
   * (container labels `agent-runtime.label.<key>`, and the handle) and `userId` (the cost lease's scope). `gpu`,
   * `timeoutMs` and `idleTimeoutMs` fail with UNSUPPORTED naming the field. A create with an `image`, `cpuCores`,
   * `memoryMiB` or `env` that differ from the provider's bypasses the pool.
   */
  async create(input: CreateRuntimeInput): Promise<DockerRuntime> {
    this.#assertOpen();
    const parsed = parseCreateRuntimeInput(input, {
      backend: "docker",
      supported: SUPPORTED_OVERRIDES,
      hints: OVERRIDE_HINTS,
    });
    const overrides = overridesOf(parsed);
    const image =
      overrides.image !== undefined
        ? resolveImage(overrides.image, this.options.baseImage, "image")
        : undefined;
    if (image === undefined && this.#keepsPoolShape(overrides)) {
      const pooled = this.#pool?.acquire(parsed.sessionId, overrides);
      if (pooled) {
        if (pooled.containerId) this.#handedOut.add(pooled.containerId);
        return pooled;
      }
    }
    return this.#newRuntime(parsed.sessionId, { overrides, ...(image ? { image } : {}) });
  }

  #keepsPoolShape(overrides: ResolvedSessionOverrides): boolean {
    const o = this.options;
    if (overrides.cpuCores !== undefined && overrides.cpuCores !== o.cpuCores) return false;
    if (overrides.memoryMiB !== undefined && overrides.memoryMiB !== o.memoryMiB) return false;
    return Object.entries(overrides.env ?? {}).every(([k, v]) => o.env[k] === v);
  }

  /** Re-attaches to a container from its handle; `connect()` verifies it still runs (NOT_FOUND otherwise). */
  async attach(handle: RuntimeHandle): Promise<DockerRuntime> {
    this.#assertOpen();
    if (handle?.backend !== "docker") {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `handle.backend: expected "docker", got ${JSON.stringify(handle?.backend)}`,
      );
    }
    return this.#newRuntime(handle.sessionId, { attachTo: handle });
  }

  /**
   * Drains the warm pool, then removes any container still labelled with this provider's pool that was never
   * handed out (a start that outlived its runtime). Runtimes handed out keep running. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (!this.#pool) return;
      await this.#pool.drain();
      try {
        for (const c of await this.inventory.list({ [LABELS.pool]: this.poolId })) {
          if (this.#handedOut.has(c.sandboxId)) continue;
          this.#context.logger.warn("removing a leftover warm-pool container", { container: c.name });
          await this.inventory.terminate(c.sandboxId).catch(() => undefined);
        }
      } catch (err) {
        this.#context.logger.warn("sweeping warm-pool containers failed", { error: String(err) });
      }
    })();
    return this.#closed;
  }

  toJSON(): Record<string, unknown> {
    return {
      backend: this.backend,
      engine: this.#svc.engine.address,
      connect: this.#svc.connect,
      network: this.options.network,
      pool: this.options.pool,
      capabilities: this.capabilities,
    };
  }

  [inspect.custom](): string {
    return `DockerRuntimeProvider ${JSON.stringify(this.toJSON())}`;
  }
}

/**
 * The `docker` runtime plugin for a `PluginRegistry`: renamed options named with their replacement, the schema,
 * the checks between options, then a {@link DockerRuntimeProvider}. {@link dockerRuntime} runs the same pipeline.
 */
export const dockerRuntimePlugin = definePlugin({
  name: "docker",
  kind: "runtime",
  optionsSchema: DockerRuntimeOptionsSchema,
  renamedOptions: DOCKER_RENAMED_OPTIONS,
  validate: validateDockerRuntimeOptions,
  create: (options, context) => new DockerRuntimeProvider(options, context),
});

/** Parses docker runtime options as the plugin does, without connecting to an engine. */
export function parseDockerRuntimeOptions(options: DockerRuntimeOptions): ResolvedDockerRuntimeOptions {
  return resolvePluginOptions(dockerRuntimePlugin, options, WHAT);
}

/**
 * Creates a Docker runtime provider through the plugin's pipeline.
 *
 * @example
 * ```ts
 * const docker = dockerRuntime({ memoryMiB: 2048, cpuCores: 2, pool: { size: 2 } });
 * const runtime = await docker.create({ sessionId: "s1" });
 * await runtime.connect(); // the first start builds the default image (once)
 * console.log((await runtime.runCommand("uname -a")).content);
 * await runtime.close();
 * await docker.close();
 * ```
 */
export function dockerRuntime(
  options: DockerRuntimeOptions = {},
  context: Partial<PluginContext> = {},
): DockerRuntimeProvider {
  return createPluginInstance(
    dockerRuntimePlugin,
    options,
    { logger: quietLogger, redactor: noopRedactor, ...context },
    WHAT,
  );
}
