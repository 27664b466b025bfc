import type { Logger, SandboxInventory } from "@agent-runtime/runtime-core";
import { LEASE_TAG_KEY } from "@agent-runtime/runtime-core";
import type { Clock } from "./clock.js";
import { toCostError } from "./errors.js";
import type { CostEvents } from "./events.js";
import type { LeaseRecord } from "./ledger.js";
import type { Settlement, SettleOptions } from "./settlement.js";

// What a backend and a cost plugin agree on lives in runtime-core; re-exported under the names users import.
export type { InventorySandbox, SandboxInventory } from "@agent-runtime/runtime-core";
export { LEASE_TAG_KEY } from "@agent-runtime/runtime-core";

/** Options of one sweep. */
export interface SweepOptions {
  /** Leave leases younger than this alone (their create may be in flight), in ms. @default the guard's sweepGraceMs */
  graceMs?: number;
}

/** What a sweep did. */
export interface SweepReport {
  /** Sandboxes listed with a lease tag. */
  listed: number;
  /** Leases settled because no sandbox carries them. */
  settled: { leaseId: string; chargedUsd: number; durationMs: number }[];
  /** Sandboxes terminated because no open lease pays for them. */
  terminated: { sandboxId: string; leaseId: string; reason: string }[];
  /** Sandboxes found for leases that were reserved but never activated (now active). */
  adopted: { sandboxId: string; leaseId: string }[];
  /** Sandboxes whose lease tag belongs to another ledger: left alone. */
  foreign: string[];
  /** Terminations that failed (the sandbox may still run). */
  errors: { sandboxId: string; message: string }[];
}

/** What a sweep works with: the guard's lease operations and services. */
export interface SweeperParts {
  clock: Clock;
  logger: Logger;
  events: CostEvents;
  ledgerPath: string;
  /** Every lease id of this ledger starts with this. */
  leasePrefix: string;
  /** Default of {@link SweepOptions.graceMs}. */
  graceMs: number;
  getLease(leaseId: string): LeaseRecord | undefined;
  openLeases(): LeaseRecord[];
  activate(leaseId: string, sandboxId: string): Promise<void>;
  settle(leaseId: string, options: SettleOptions): Promise<Settlement>;
}

/**
 * Reconciles a ledger's leases with a backend's sandboxes listed by {@link LEASE_TAG_KEY}: a lease without a
 * sandbox is settled; a sandbox without an open lease is terminated and reported; a sandbox found for a
 * never-activated lease is adopted. Sandboxes tagged by another ledger are left alone.
 */
export async function sweepOrphans(
  parts: SweeperParts,
  inventory: SandboxInventory,
  options: SweepOptions = {},
): Promise<SweepReport> {
  const sandboxes = await inventory.listByTag(LEASE_TAG_KEY);
  const now = parts.clock.now();
  const report: SweepReport = {
    listed: sandboxes.length,
    settled: [],
    terminated: [],
    adopted: [],
    foreign: [],
    errors: [],
  };
  const covered = new Set<string>();
  for (const sandbox of sandboxes) {
    const leaseId = sandbox.tags[LEASE_TAG_KEY];
    if (!leaseId?.startsWith(parts.leasePrefix)) {
      report.foreign.push(sandbox.sandboxId);
      continue;
    }
    const reason = await coverOrOrphan(parts, leaseId, sandbox.sandboxId, covered, report);
    if (reason !== undefined)
      await terminateOrphan(parts, inventory, sandbox.sandboxId, leaseId, reason, report);
  }
  await settleUncovered(parts, inventory.provider, covered, now, options.graceMs ?? parts.graceMs, report);
  return report;
}

/**
 * A sandbox of this ledger: when its lease is open on it (or was never activated: then adopted), marks the
 * lease covered and returns undefined; otherwise returns why the sandbox is an orphan.
 */
async function coverOrOrphan(
  parts: SweeperParts,
  leaseId: string,
  sandboxId: string,
  covered: Set<string>,
  report: SweepReport,
): Promise<string | undefined> {
  const lease = parts.getLease(leaseId);
  if (!lease) return "no lease with this id in the ledger";
  if (lease.status === "settled") return `its lease was settled (${lease.settleReason ?? "closed"})`;
  if (lease.sandboxId !== undefined && lease.sandboxId !== sandboxId)
    return `its lease is active on sandbox ${lease.sandboxId}`;
  covered.add(leaseId);
  if (lease.sandboxId === undefined) {
    await parts.activate(leaseId, sandboxId);
    report.adopted.push({ sandboxId, leaseId });
  }
  return undefined;
}

async function terminateOrphan(
  parts: SweeperParts,
  inventory: SandboxInventory,
  sandboxId: string,
  leaseId: string,
  reason: string,
  report: SweepReport,
): Promise<void> {
  try {
    await inventory.terminate(sandboxId);
    report.terminated.push({ sandboxId, leaseId, reason });
    parts.logger.warn(`Terminated orphan sandbox ${sandboxId}: ${reason}`, { sandboxId, leaseId });
    parts.events.emit({ type: "orphan", sandboxId, leaseId, reason });
  } catch (err) {
    report.errors.push({ sandboxId, message: toCostError(err, parts.ledgerPath).message });
  }
}

/** Settles the provider's open leases (past the grace period) that no listed sandbox carries. */
async function settleUncovered(
  parts: SweeperParts,
  provider: string,
  covered: ReadonlySet<string>,
  now: number,
  graceMs: number,
  report: SweepReport,
): Promise<void> {
  for (const lease of parts.openLeases()) {
    if (lease.provider !== provider || covered.has(lease.leaseId)) continue;
    if (now - lease.createdAtMs < graceMs) continue;
    // The sandbox is gone and we do not know when it stopped; the provider ends it at its lifetime at the latest.
    const s = await parts.settle(lease.leaseId, {
      reason: "orphan sweep: no sandbox carries this lease",
      endedAtMs: Math.min(now, lease.createdAtMs + lease.lifetimeMs),
    });
    if (!s.alreadySettled)
      report.settled.push({ leaseId: s.leaseId, chargedUsd: s.chargedUsd, durationMs: s.durationMs });
  }
}
