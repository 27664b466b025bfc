import { existsSync } from "node:fs";
import {
  type CreateRuntimeInput,
  checkRenamedOptions,
  definePlugin,
  noopRedactor,
  overridesOf,
  type PluginContext,
  parseCreateRuntimeInput,
  parseOrThrow,
  quietLogger,
  type ResolvedSessionOverrides,
  type RuntimeCapabilities,
  RuntimeError,
  type RuntimeHandle,
  type RuntimeProvider,
  type SessionOverrideField,
  WarmPool,
} from "@agent-runtime/runtime-core";
import { pidsCgroupBase } from "./cgroups.js";
import { allowListUnsupported } from "./egress-allow.js";
import { LocalRuntime } from "./local-runtime.js";
import { slirpPath } from "./nat-network.js";
import {
  type LocalRuntimeOptions,
  LocalRuntimeOptionsSchema,
  type ResolvedLocalRuntimeOptions,
} from "./options.js";
import { bubblewrapUsable, which } from "./sandbox-process.js";

/** Per-session override fields runtime-local honours (besides `labels` and `userId`). */
const SUPPORTED_OVERRIDES = ["memoryMiB", "env"] as const satisfies readonly SessionOverrideField[];

/** What to do instead, for each override runtime-local refuses. */
const OVERRIDE_HINTS: Partial<Record<SessionOverrideField, string>> = {
  image:
    "local sandboxes run the host's own system (read-only under bubblewrap); use the modal or docker backend for images",
  gpu: "the local backend has no GPUs (capability gpu is off); use the modal backend",
  cpuCores:
    "local sandboxes are not limited to a number of cores; set limits.cpuSeconds on the provider for a CPU-time limit",
  timeoutMs: "local sandboxes have no lifetime limit; close the runtime when done",
  idleTimeoutMs: "local sandboxes have no idle timeout; close the runtime when done",
};

const RENAMED: Record<string, string> = {
  workspace: "workspaceDir",
  workdir: "workspaceDir",
  timeoutMs: "startupTimeoutMs",
  memoryMiB: "limits.memoryMiB",
  poolSize: "pool.size",
  sandbox: "isolation",
};

/**
 * Creates local runtimes: the bundled action-server as a child process group on 127.0.0.1, optionally
 * inside bubblewrap, with an optional warm pool. Implements {@link RuntimeProvider}.
 */
export class LocalRuntimeProvider implements RuntimeProvider {
  readonly backend = "local";
  readonly capabilities: RuntimeCapabilities;
  /** The isolation every sandbox of this provider uses. */
  readonly isolation: "none" | "bubblewrap";
  readonly options: ResolvedLocalRuntimeOptions;
  readonly #context: PluginContext;
  readonly #pool: WarmPool<LocalRuntime> | undefined;
  #closed = false;
  /** Per-session override fields this provider honours besides `labels` and `userId`. */
  readonly supportedOverrides: readonly SessionOverrideField[] = SUPPORTED_OVERRIDES;

  constructor(options: ResolvedLocalRuntimeOptions, context: PluginContext) {
    this.options = options;
    this.#context = context;
    const bwrap = options.isolation !== "none" && bubblewrapUsable();
    if (options.isolation === "bubblewrap" && !bwrap) {
      throw new RuntimeError(
        "UNSUPPORTED",
        'isolation: "bubblewrap" was asked for but `bwrap` is missing or cannot create namespaces here. Install it (apt-get install bubblewrap) or use isolation: "none".',
      );
    }
    if (options.isolation === "auto" && !bwrap) {
      context.logger.warn(
        'bubblewrap is not available: local sandboxes run with isolation "none" (no filesystem or network isolation).',
      );
    }
    this.isolation = bwrap ? "bubblewrap" : "none";
    if (options.network === "none" && this.isolation !== "bubblewrap") {
      throw new RuntimeError(
        "UNSUPPORTED",
        'network: "none" needs bubblewrap isolation (a private network namespace); install bwrap (apt-get install bubblewrap) or drop network: "none".',
      );
    }
    if (options.network !== "none" && this.isolation === "bubblewrap" && !slirpPath()) {
      throw new RuntimeError(
        "UNSUPPORTED",
        'network: "egress" (the default under bubblewrap) needs slirp4netns for outbound access without the host\'s loopback: install it (apt-get install slirp4netns), or set network: "none" for a sandbox without network.',
      );
    }
    if (typeof options.network === "object") {
      const why = this.isolation !== "bubblewrap" ? "it needs bubblewrap isolation" : allowListUnsupported();
      if (why) {
        throw new RuntimeError(
          "UNSUPPORTED",
          `network.allow: an egress allow-list cannot be enforced here: ${why}. Use network: "egress" or "none" instead.`,
        );
      }
    }
    if (options.extraBinds.length > 0 && this.isolation !== "bubblewrap") {
      context.logger.warn(
        'extraBinds: ignored with isolation "none" (the sandbox already sees the whole host filesystem).',
      );
    }
    for (const bind of options.extraBinds) {
      if (!existsSync(bind.source)) {
        throw new RuntimeError(
          "INVALID_ARGUMENT",
          `extraBinds: ${bind.source} does not exist; create it or remove it from extraBinds.`,
        );
      }
    }
    if (options.limits.maxProcesses && process.getuid?.() === 0 && !pidsCgroupBase()) {
      throw new RuntimeError(
        "UNSUPPORTED",
        "limits.maxProcesses: the host runs as root, where RLIMIT_NPROC is not enforced, and no writable pids cgroup was found under /sys/fs/cgroup; run the host as a non-root user, make the pids cgroup writable, or remove limits.maxProcesses.",
      );
    }
    if (options.workspaceDir !== undefined && options.pool.size > 0) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        "pool.size: a warm pool needs a fresh workspace per sandbox; remove workspaceDir or set pool.size to 0.",
      );
    }
    this.capabilities = {
      persistentShell: true,
      stdin: true,
      ipython: which("python3") !== undefined,
      gpu: false,
      pause: false,
      attach: true,
      tunnels: false,
      vscode: false,
      fileTransfer: true,
      networkIsolation: this.isolation === "bubblewrap",
    };
    if (options.pool.size > 0) {
      this.#pool = new WarmPool({
        size: options.pool.size,
        logger: context.logger,
        create: (id) => this.#newRuntime(id),
      });
      this.#pool.fill();
    }
  }

  #newRuntime(
    sessionId: string,
    attachTo?: RuntimeHandle,
    overrides?: ResolvedSessionOverrides,
  ): LocalRuntime {
    const o = this.options;
    // memoryMiB applies as limits.memoryMiB; env merges over the provider's.
    const options: ResolvedLocalRuntimeOptions =
      overrides?.memoryMiB === undefined && overrides?.env === undefined
        ? o
        : {
            ...o,
            env: { ...o.env, ...overrides.env },
            limits: {
              ...o.limits,
              ...(overrides.memoryMiB !== undefined ? { memoryMiB: overrides.memoryMiB } : {}),
            },
          };
    return new LocalRuntime({
      sessionId,
      options,
      isolation: this.isolation,
      capabilities: this.capabilities,
      context: this.#context,
      ...(attachTo ? { attachTo } : {}),
      ...(overrides ? { overrides } : {}),
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new RuntimeError("FAILED_PRECONDITION", "This local runtime provider is closed.");
  }

  /** Ready sandboxes in the warm pool. */
  get poolReady(): number {
    return this.#pool?.readyCount ?? 0;
  }

  /**
   * A runtime for `input.sessionId`. Overrides: `memoryMiB` (applied as `limits.memoryMiB`),
   * `env` (merged over the provider's), `labels` (kept in the handle), `userId` (the cost lease's scope). `image`,
   * `gpu`, `cpuCores`, `timeoutMs` and `idleTimeoutMs` fail with UNSUPPORTED naming the field. The warm pool serves
   * only creates that keep the provider's shape: `memoryMiB` or `env` that differ, or a `userId`, get a new sandbox.
   */
  async create(input: CreateRuntimeInput): Promise<LocalRuntime> {
    this.#assertOpen();
    const parsed = parseCreateRuntimeInput(input, {
      backend: "local",
      supported: SUPPORTED_OVERRIDES,
      hints: OVERRIDE_HINTS,
    });
    const overrides = overridesOf(parsed);
    const pooled = this.#keepsPoolShape(overrides)
      ? this.#pool?.acquire(parsed.sessionId, overrides)
      : undefined;
    return pooled ?? this.#newRuntime(parsed.sessionId, undefined, overrides);
  }

  /** True when a pooled sandbox (started with the provider's options and no cost scope) fits `overrides`. */
  #keepsPoolShape(overrides: ResolvedSessionOverrides): boolean {
    const o = this.options;
    if (overrides.userId !== undefined) return false;
    if (overrides.memoryMiB !== undefined && overrides.memoryMiB !== o.limits.memoryMiB) return false;
    return Object.entries(overrides.env ?? {}).every(([k, v]) => o.env[k] === v);
  }

  async attach(handle: RuntimeHandle): Promise<LocalRuntime> {
    this.#assertOpen();
    if (handle?.backend !== "local") {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `handle.backend: expected "local", got ${JSON.stringify(handle?.backend)}`,
      );
    }
    return this.#newRuntime(handle.sessionId, handle);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool?.drain();
  }
}

/**
 * Creates a local runtime provider.
 *
 * @example
 * ```ts
 * const local = localRuntime({ pool: { size: 2 } });
 * const runtime = await local.create({ sessionId: "s1" });
 * await runtime.connect();
 * console.log((await runtime.runCommand("uname -a")).content);
 * await runtime.close();
 * await local.close();
 * ```
 */
export function localRuntime(
  options: LocalRuntimeOptions = {},
  context: Partial<PluginContext> = {},
): LocalRuntimeProvider {
  checkRenamedOptions(options, RENAMED, "local runtime options");
  const parsed = parseOrThrow(LocalRuntimeOptionsSchema, options, "local runtime options");
  if (parsed.workspaceDir !== undefined && !existsSync(parsed.workspaceDir)) {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `workspaceDir: ${parsed.workspaceDir} does not exist; create it first or omit workspaceDir for a temporary one.`,
    );
  }
  return new LocalRuntimeProvider(parsed, { logger: quietLogger, redactor: noopRedactor, ...context });
}

/** The `local` runtime plugin for a {@link PluginRegistry}. */
export const localRuntimePlugin = definePlugin({
  name: "local",
  kind: "runtime",
  optionsSchema: LocalRuntimeOptionsSchema,
  create: (options, context) => new LocalRuntimeProvider(options, context),
});
