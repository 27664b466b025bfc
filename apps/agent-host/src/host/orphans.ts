import type { HostCore } from "./core.js";
import { errorInfo } from "./error-info.js";

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
 * Needs a cost plugin with `sweepOrphans` (cost-guard) and a provider with an `inventory`; otherwise does nothing. Never throws: a failed
 * sweep is logged.
 */
export async function sweepOrphans(core: HostCore): Promise<OrphanSweepSummary | undefined> {
  // runtime-core's contract: a provider may offer an `inventory`, a cost plugin a `sweepOrphans` over one.
  const cost = core.plugins.cost;
  const inventory = core.plugins.provider.inventory;
  if (!cost?.sweepOrphans || !inventory) return undefined;
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
