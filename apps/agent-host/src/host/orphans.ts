import { CostGuard } from "@agent-runtime/cost-guard";
import type { RuntimeProvider, SandboxInventory } from "@agent-runtime/runtime-core";
import type { HostCore } from "./core.js";
import { errorInfo } from "./error-info.js";

/**
 * The provider's runtime-core `SandboxInventory` (runtime-docker's and runtime-modal's `provider.inventory`), when
 * it offers one. `RuntimeProvider` does not declare it, so the shape is checked here, once.
 */
export function inventoryOf(provider: RuntimeProvider): SandboxInventory | undefined {
  const inventory = (provider as { inventory?: unknown }).inventory;
  if (typeof inventory !== "object" || inventory === null) return undefined;
  const candidate = inventory as Partial<SandboxInventory>;
  return typeof candidate.provider === "string" &&
    typeof candidate.listByTag === "function" &&
    typeof candidate.terminate === "function"
    ? (candidate as SandboxInventory)
    : undefined;
}

/** What one orphan sweep did, in counts (undefined when none ran). */
export interface OrphanSweepSummary {
  provider: string;
  listed: number;
  /** Sandboxes removed because no open lease pays for them. */
  terminated: number;
  /** Leases settled because no sandbox carries them. */
  settled: number;
  /** Sandboxes whose never-activated lease was activated on them. */
  adopted: number;
  /** Terminations that failed. */
  errors: number;
}

/**
 * Reconciles the cost ledger with the backend's sandboxes (cost-guard's `sweepOrphans` over the provider's
 * inventory): a sandbox whose lease was settled or is unknown, such as one a killed host was still creating, is
 * removed; a lease of this provider whose sandbox is gone (older than cost-guard's `sweepGraceMs`) is settled.
 * Runs once the sessions found at startup have re-attached, so their sandboxes are covered by their leases.
 * Needs the `cost-guard` plugin and a provider with an inventory; otherwise does nothing. Never throws: a failed
 * sweep is logged.
 */
export async function sweepOrphans(core: HostCore): Promise<OrphanSweepSummary | undefined> {
  const cost = core.plugins.cost;
  const inventory = inventoryOf(core.plugins.provider);
  if (!(cost instanceof CostGuard) || !inventory) return undefined;
  try {
    const report = await cost.sweepOrphans(inventory);
    const summary: OrphanSweepSummary = {
      provider: inventory.provider,
      listed: report.listed,
      terminated: report.terminated.length,
      settled: report.settled.length,
      adopted: report.adopted.length,
      errors: report.errors.length,
    };
    const acted = summary.terminated + summary.settled + summary.adopted + summary.errors > 0;
    if (acted) core.logger.info("orphan sweep", { ...summary });
    else core.logger.debug("orphan sweep", { ...summary });
    for (const e of report.errors)
      core.logger.warn("removing an orphan sandbox failed", { sandboxId: e.sandboxId, error: e.message });
    return summary;
  } catch (err) {
    const info = errorInfo(err);
    core.logger.warn("orphan sweep failed", {
      provider: inventory.provider,
      code: info.code,
      error: info.message,
    });
    return undefined;
  }
}
