import {
  createPluginInstance,
  definePlugin,
  InvalidArgumentError,
  noopRedactor,
  quietLogger,
  resolvePluginOptions,
} from "@agent-runtime/runtime-core";
import { CostGuard, type CostGuardServices } from "./guard.js";
import {
  type CostGuardOptions,
  CostGuardOptionsSchema,
  RENAMED_COST_GUARD_OPTIONS,
  type ResolvedCostGuardOptions,
} from "./options.js";
import { type PriceTable, type PriceTableOverride, readPriceTableFile, resolvePriceTable } from "./prices.js";

/**
 * Semantic checks of parsed options (run by runtime-core's `resolvePluginOptions` after the schema): the
 * price table must resolve, i.e. `pricesFile` is readable JSON of a valid override, and `prices` applies
 * cleanly on top of it. Returns issues as `path: message`.
 */
export function validateCostGuardOptions(options: ResolvedCostGuardOptions): string[] {
  let base: PriceTable | undefined;
  if (options.pricesFile !== undefined) {
    const path = options.pricesFile;
    let override: PriceTableOverride;
    try {
      override = readPriceTableFile(path);
    } catch (err) {
      return [`pricesFile: ${(err as Error).message}`];
    }
    try {
      base = resolvePriceTable(override);
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      return err.issues.map((issue) => `pricesFile: ${path}: ${issue}`);
    }
  }
  try {
    resolvePriceTable(options.prices, base);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    return err.issues.map((issue) => `prices.${issue}`);
  }
  return [];
}

/**
 * The `cost-guard` plugin (kind `cost`): register it in a host's `PluginRegistry`; its instance is the
 * {@link CostGuard} (runtime-core's `CostPlugin`) that runtimes receive as `context.cost`. Options go through
 * runtime-core's pipeline: renamed options, the schema, then {@link validateCostGuardOptions}.
 */
export const costGuardPlugin = definePlugin({
  name: "cost-guard",
  kind: "cost",
  optionsSchema: CostGuardOptionsSchema,
  renamedOptions: RENAMED_COST_GUARD_OPTIONS,
  validate: validateCostGuardOptions,
  create: (options, context) => new CostGuard(options, { logger: context.logger }),
});

/**
 * Parses and validates cost-guard options exactly as {@link costGuard} and the plugin do: every issue as
 * `path: message`, renamed options named (`dbPath: this option is now "ledgerPath"`). Throws INVALID_ARGUMENT.
 */
export function parseCostGuardOptions(options: unknown): ResolvedCostGuardOptions {
  return resolvePluginOptions(costGuardPlugin, options);
}

/**
 * Creates a cost guard: the same option pipeline as the `cost-guard` plugin (renamed options, schema,
 * validation; every issue at once), then opens (or creates) the ledger and starts the enforcement timer
 * (unless `enforceIntervalMs` is 0). Close it with `guard.close()`.
 *
 * @example
 * ```ts
 * const guard = costGuard({
 *   ledgerPath: "/var/lib/agent-host/cost.db",
 *   budgets: [{ scope: "global", period: "monthly", limitUsd: 500 }, { scope: "user", period: "daily", limitUsd: 20 }],
 *   idleTimeoutMs: 15 * 60_000,
 * });
 * ```
 */
export function costGuard(options: CostGuardOptions = {}, services: CostGuardServices = {}): CostGuard {
  // The plugin itself, with `create` also handing over the services a plugin context does not carry.
  const withServices: typeof costGuardPlugin = {
    ...costGuardPlugin,
    create: (resolved, context) => new CostGuard(resolved, { ...services, logger: context.logger }),
  };
  return createPluginInstance(withServices, options, {
    logger: services.logger ?? quietLogger,
    redactor: noopRedactor,
  });
}
