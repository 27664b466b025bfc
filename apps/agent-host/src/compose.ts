import {
  type CostHooks,
  InvalidArgumentError,
  type Logger,
  noopRedactor,
  type PluginContext,
  type PluginRegistry,
  quietLogger,
  RuntimeError,
  type RuntimeProvider,
  type SecretsResolver,
} from "@agent-runtime/runtime-core";
import type { ResolvedHostConfig } from "./options.js";
import { builtinRegistry, ensurePlugin } from "./plugins.js";

/** Reports a cost plugin may offer besides the lease hooks (cost-guard does). */
export interface CostReporting {
  budgetStatus(): {
    budget: string;
    scope: string;
    period: string;
    enforcement: string;
    limitUsd: number;
    spentUsd: number;
    reservedUsd: number;
    remainingUsd: number;
    usedPercent: number;
  }[];
  report(query: { by: "user" | "session" | "day" | "month" | "gpu" | "provider"; sinceMs?: number }): {
    key: string;
    leases: number;
    hours: number;
    gpuHours: number;
    costUsd: number;
  }[];
}

/** Lease lookups a cost plugin may offer besides the hooks (cost-guard does): used to settle leases of lost sandboxes. */
export interface CostLeaseLookup {
  /** A lease by id, or undefined when the ledger does not know it. */
  getLease(leaseId: string): { status: string; createdAtMs: number; lifetimeMs: number } | undefined;
}

/** The cost plugin as the host uses it: lease hooks (settle may take when the sandbox ended) plus optional reports. */
export type HostCostPlugin = CostHooks &
  Partial<CostReporting> &
  Partial<CostLeaseLookup> & {
    settle(
      leaseId: string,
      options?: { reason?: string; endedAtMs?: number },
    ): ReturnType<CostHooks["settle"]>;
  };

/** The plugins a host runs with, composed through the registry from its configuration. */
export interface ComposedPlugins {
  readonly registry: PluginRegistry;
  /** The runtime plugin's provider. */
  readonly provider: RuntimeProvider;
  /** Name of the runtime plugin in use. */
  readonly runtimePlugin: string;
  /** The cost plugin's hooks, when enabled. */
  readonly cost: HostCostPlugin | undefined;
  /** Name of the cost plugin, when enabled. */
  readonly costPlugin: string | undefined;
  /** The secrets resolver, when enabled. */
  readonly secrets: SecretsResolver | undefined;
  /** The logger the plugins were given (`demo` and `run` log sandbox lifecycles to it). */
  readonly logger?: Logger;
  /** Closes the provider (warm pool) and the cost plugin (ledger). Idempotent. */
  close(): Promise<void>;
}

/** Services of {@link composePlugins} that are not configuration. */
export interface ComposeOptions {
  /** @default quietLogger */
  logger?: Logger;
  /** Start from this registry (to add third-party plugins up front). @default the built-in registry */
  registry?: PluginRegistry;
  /** Cost ledger path used when `cost.options.ledgerPath` is absent. @default ":memory:" (the plugin's default) */
  defaultLedgerPath?: string;
}

function isProvider(value: unknown): value is RuntimeProvider {
  const v = value as Partial<RuntimeProvider> | null;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.create === "function" &&
    typeof v.attach === "function" &&
    typeof v.close === "function"
  );
}

function isCostHooks(value: unknown): value is CostHooks {
  const v = value as Partial<CostHooks> | null;
  return (
    typeof v === "object" && v !== null && typeof v.reserve === "function" && typeof v.settle === "function"
  );
}

function isResolver(value: unknown): value is SecretsResolver {
  const v = value as Partial<SecretsResolver> | null;
  return typeof v === "object" && v !== null && typeof v.resolve === "function";
}

/**
 * Builds the cost plugin, the secrets plugin and the runtime provider from `config` through the plugin
 * registry; each plugin's options are validated by its own schema, errors naming the config path.
 *
 * @example
 * ```ts
 * const plugins = await composePlugins(parseHostConfig({ runtime: { plugin: "local" } }));
 * const runtime = await plugins.provider.create({ sessionId: "s1" });
 * ```
 */
export async function composePlugins(
  config: ResolvedHostConfig,
  options: ComposeOptions = {},
): Promise<ComposedPlugins> {
  const logger = options.logger ?? quietLogger;
  const registry = options.registry ?? builtinRegistry();
  const context: PluginContext = { logger, redactor: noopRedactor };
  let cost: HostCostPlugin | undefined;
  let costPlugin: string | undefined;
  const closeCost = () => {
    const c = cost as { close?: () => unknown } | undefined;
    if (typeof c?.close === "function") c.close();
  };
  try {
    if (config.cost.enabled) {
      costPlugin = await ensurePlugin(registry, "cost", config.cost.plugin);
      const costOptions = { ...config.cost.options };
      if (costPlugin === "cost-guard" && costOptions.ledgerPath === undefined && options.defaultLedgerPath) {
        costOptions.ledgerPath = options.defaultLedgerPath;
      }
      const instance = withPath(
        () => registry.create("cost", costPlugin!, costOptions, context),
        "cost.options",
      );
      if (!isCostHooks(instance))
        throw new RuntimeError(
          "INTERNAL",
          `The cost plugin "${costPlugin}" did not create CostHooks (reserve/settle).`,
        );
      cost = instance as HostCostPlugin;
      context.cost = cost;
    }
    let secrets: SecretsResolver | undefined;
    if (config.secrets.enabled) {
      const name = await ensurePlugin(registry, "secrets", config.secrets.plugin);
      const instance = withPath(
        () => registry.create("secrets", name, config.secrets.options, context),
        "secrets.options",
      );
      if (!isResolver(instance))
        throw new RuntimeError("INTERNAL", `The secrets plugin "${name}" did not create a SecretsResolver.`);
      secrets = instance;
      context.secrets = secrets;
    }
    const runtimePlugin = await ensurePlugin(registry, "runtime", config.runtime.plugin);
    const provider = withPath(
      () => registry.create("runtime", runtimePlugin, config.runtime.options, context),
      "runtime.options",
    );
    if (!isProvider(provider)) {
      throw new RuntimeError(
        "INTERNAL",
        `The runtime plugin "${runtimePlugin}" did not create a RuntimeProvider (create/attach/close).`,
      );
    }
    let closed = false;
    return {
      registry,
      provider,
      runtimePlugin,
      cost,
      costPlugin,
      secrets,
      logger,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await provider.close();
        } finally {
          closeCost();
        }
      },
    };
  } catch (err) {
    closeCost();
    throw err;
  }
}

/** Re-throws an INVALID_ARGUMENT from a plugin's options with the config path in front of each issue. */
function withPath<T>(fn: () => T, path: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RuntimeError && err.code === "INVALID_ARGUMENT" && !err.message.includes(path)) {
      const issues = Array.isArray(err.details?.issues)
        ? (err.details.issues as string[]).map((i) => `${path}.${i}`)
        : [];
      const message =
        issues.length > 0 ? `Invalid ${path}:\n  ${issues.join("\n  ")}` : `${path}: ${err.message}`;
      throw new InvalidArgumentError(message, issues, { cause: err });
    }
    throw err;
  }
}
