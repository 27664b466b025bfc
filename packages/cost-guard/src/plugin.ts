import { definePlugin, InvalidArgumentError, parseOrThrow } from "@agent-runtime/runtime-core";
import { CostGuard, type CostGuardServices } from "./guard.js";
import { type CostGuardOptions, CostGuardOptionsSchema, renamedOptionIssues } from "./options.js";

/** Parses cost-guard options once: every issue as `path: message`, renamed options named. */
export function parseCostGuardOptions(options: unknown) {
  const renamed = renamedOptionIssues(options);
  if (renamed.length > 0) {
    throw new InvalidArgumentError(`Invalid cost-guard options:\n  ${renamed.join("\n  ")}`, renamed);
  }
  return parseOrThrow(CostGuardOptionsSchema, options ?? {}, "cost-guard options");
}

/**
 * Creates a cost guard: parses options once, opens (or creates) the ledger and starts the enforcement timer
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
  return new CostGuard(parseCostGuardOptions(options), services);
}

/**
 * The `cost-guard` plugin (kind `cost`): register it in a host's `PluginRegistry`; its instance is the
 * `CostHooks` runtimes receive as `context.cost`.
 */
export const costGuardPlugin = definePlugin({
  name: "cost-guard",
  kind: "cost",
  optionsSchema: CostGuardOptionsSchema,
  create: (options, context) => new CostGuard(options, { logger: context.logger }),
});
