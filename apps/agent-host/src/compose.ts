import {
  type CostPlugin,
  InvalidArgumentError,
  type Logger,
  type PluginContext,
  type PluginRegistry,
  quietLogger,
  type Redactor,
  RuntimeError,
  type RuntimeProvider,
  type SecretsPlugin,
} from "@agent-runtime/runtime-core";
import type { ResolvedHostConfig } from "./options.js";
import { builtinRegistry, ensurePlugin } from "./plugins.js";
import { DelegatingRedactor, redactedLogger } from "./redaction.js";

/** The plugins a host runs with, composed through the registry from its configuration. */
export interface ComposedPlugins {
  readonly registry: PluginRegistry;
  /** The runtime plugin's provider. */
  readonly provider: RuntimeProvider;
  /** Name of the runtime plugin in use. */
  readonly runtimePlugin: string;
  /** The cost plugin's instance (lease hooks, reports, lease lookups), when enabled. */
  readonly cost: CostPlugin | undefined;
  /** Name of the cost plugin, when enabled. */
  readonly costPlugin: string | undefined;
  /** The secrets plugin's instance, when enabled. */
  readonly secrets: SecretsPlugin | undefined;
  /**
   * The secrets plugin's live redactor: it knows every value the plugin has resolved so far, for any session.
   * Undefined when secrets are off or the plugin offers none (hosts then redact with each resolution's redactor).
   */
  readonly redactor: Redactor | undefined;
  /** The logger the plugins were given: every line goes through {@link redactor} first. */
  readonly logger: Logger;
  /** Closes the provider (warm pool), the secrets plugin and the cost plugin (ledger). Idempotent. */
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

/**
 * Builds the cost plugin, the secrets plugin and the runtime provider from `config` through the plugin
 * registry, which checks each instance against its kind; each plugin's options are validated by its own
 * schema, errors naming the config path (`runtime.options.isolation: ...`). The runtime plugin's context
 * carries the secrets plugin's live redactor, and every plugin logs through it.
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
  const registry = options.registry ?? builtinRegistry();
  // Plugins created before the secrets plugin (cost) log through its redactor too, once it exists.
  const redactor = new DelegatingRedactor();
  const logger = redactedLogger(options.logger ?? quietLogger, redactor);
  const context: PluginContext = { logger, redactor };
  let cost: CostPlugin | undefined;
  let secrets: SecretsPlugin | undefined;
  const closeOthers = async () => {
    try {
      await secrets?.close?.();
    } finally {
      await cost?.close?.();
    }
  };
  try {
    let costPlugin: string | undefined;
    if (config.cost.enabled) {
      const name = await ensurePlugin(registry, "cost", config.cost.plugin);
      const costOptions = { ...config.cost.options };
      if (name === "cost-guard" && costOptions.ledgerPath === undefined && options.defaultLedgerPath) {
        costOptions.ledgerPath = options.defaultLedgerPath;
      }
      cost = withPath(() => registry.create("cost", name, costOptions, context), "cost.options");
      costPlugin = name;
      context.cost = cost;
    }
    if (config.secrets.enabled) {
      const name = await ensurePlugin(registry, "secrets", config.secrets.plugin);
      secrets = withPath(
        () => registry.create("secrets", name, config.secrets.options, context),
        "secrets.options",
      );
      context.secrets = secrets;
      if (secrets.redactor) redactor.use(secrets.redactor);
    }
    const runtimePlugin = await ensurePlugin(registry, "runtime", config.runtime.plugin);
    const provider = withPath(
      () => registry.create("runtime", runtimePlugin, config.runtime.options, context),
      "runtime.options",
    );
    let closed = false;
    return {
      registry,
      provider,
      runtimePlugin,
      cost,
      costPlugin,
      secrets,
      redactor: secrets?.redactor,
      logger,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await provider.close();
        } finally {
          await closeOthers();
        }
      },
    };
  } catch (err) {
    await closeOthers().catch(() => undefined);
    throw err;
  }
}

/**
 * Re-throws an INVALID_ARGUMENT from a plugin's options with the config path in front of each issue
 * (`isolation: ...` -> `runtime.options.isolation: ...`; `(root): ...` -> `runtime.options: ...`).
 */
function withPath<T>(fn: () => T, path: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RuntimeError && err.code === "INVALID_ARGUMENT" && !err.message.includes(path)) {
      const issues = Array.isArray(err.details?.issues)
        ? (err.details.issues as string[]).map((i) =>
            i.startsWith("(root)") ? `${path}${i.slice("(root)".length)}` : `${path}.${i}`,
          )
        : [];
      const message =
        issues.length > 0 ? `Invalid ${path}:\n  ${issues.join("\n  ")}` : `${path}: ${err.message}`;
      throw new InvalidArgumentError(message, issues, { cause: err });
    }
    throw err;
  }
}
