import type { Logger, SandboxInventory } from "@agent-runtime/runtime-core";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { type BudgetBinding, bindBudgets, bindingLabel, type ResolvedBudget } from "./budgets.js";
import type { Clock } from "./clock.js";
import { crossedThresholds } from "./counters.js";
import { formatUsd } from "./errors.js";
import type { CostEvents, WarningEvent } from "./events.js";
import type { GroupCommit } from "./group-commit.js";
import { fromNanoUsd, type LeaseRecord, type Ledger, toNanoUsd } from "./ledger.js";
import type { ResolvedCostGuardOptions } from "./options.js";
import type { SettleOptions } from "./settlement.js";

/** What one enforcement pass did. */
export interface EnforcementReport {
  atMs: number;
  /** Leases ended by the idle reaper. */
  reaped: { leaseId: string; reason: string; terminated: boolean }[];
  /** Leases stopped because a `terminate` budget would be crossed. */
  terminated: { leaseId: string; reason: string; terminated: boolean }[];
  /** Thresholds crossed in this pass. */
  warnings: WarningEvent[];
  /** Leases running past their reserved lifetime. */
  overruns: { leaseId: string; overrunMs: number }[];
}

type TerminateHook = (reason: string) => Promise<void>;

/** One budget (in one scope and period) and the open leases counted in it. */
interface BudgetGroup {
  binding: BudgetBinding;
  leases: LeaseRecord[];
}

/** What an {@link Enforcer} works with (one object, shared with the guard's other parts). */
export interface EnforcerParts {
  ledger: Ledger;
  commit: GroupCommit;
  clock: Clock;
  logger: Logger;
  events: CostEvents;
  options: Pick<ResolvedCostGuardOptions, "idleTimeoutMs" | "enforceIntervalMs">;
  budgets: readonly ResolvedBudget[];
  /** Stops sandboxes of leases without a terminate hook in this process. */
  inventory: SandboxInventory | undefined;
  settle(leaseId: string, options: SettleOptions): Promise<unknown>;
  accruedUsd(lease: LeaseRecord, atMs: number): number;
}

/**
 * Enforcement of running leases, in named steps (also run every `enforceIntervalMs`): the idle reaper,
 * leases past their reserved lifetime, `terminate` budgets that running leases would cross before they end,
 * and soft thresholds of spend (settled + accrued). Holds the terminate hooks runtimes register.
 */
export class Enforcer {
  readonly #p: EnforcerParts;
  readonly #hooks = new Map<string, Set<TerminateHook>>();
  readonly #reportedOverruns = new Set<string>();
  /** Leases a budget should have stopped but nothing could: reported once. */
  readonly #unstoppable = new Set<string>();
  #running: Promise<EnforcementReport> | undefined;

  constructor(parts: EnforcerParts) {
    this.#p = parts;
  }

  /** Registers what to call when a budget or the idle reaper stops a lease's sandbox. Returns an unregister function. */
  onTerminate(leaseId: string, terminate: TerminateHook): () => void {
    const set = this.#hooks.get(leaseId) ?? new Set<TerminateHook>();
    this.#hooks.set(leaseId, set);
    set.add(terminate);
    return () => {
      const current = this.#hooks.get(leaseId);
      current?.delete(terminate);
      if (current?.size === 0) this.#hooks.delete(leaseId);
    };
  }

  /** Drops what is held for a settled lease. */
  forget(leaseId: string): void {
    this.#hooks.delete(leaseId);
    this.#unstoppable.delete(leaseId);
  }

  /** Drops every hook (the guard is closing). */
  clear(): void {
    this.#hooks.clear();
  }

  /** One enforcement pass; passes never overlap (a call during a pass gets that pass's report). */
  enforce(): Promise<EnforcementReport> {
    if (this.#running) return this.#running;
    this.#running = this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<EnforcementReport> {
    const now = this.#p.clock.now();
    const report: EnforcementReport = { atMs: now, reaped: [], terminated: [], warnings: [], overruns: [] };
    const open = await this.#reapIdle(
      this.#p.commit.guarded(() => this.#p.ledger.openLeases()),
      now,
      report,
    );
    this.#reportOverruns(open, now, report);
    const groups = this.#groupByBudget(open);
    const stopped = await this.#stopOverBudget(groups, now, report);
    await this.#warnOnAccruedSpend(groups, stopped, now, report);
    return report;
  }

  /** Step 1: ends leases without a heartbeat for `idleTimeoutMs`; returns the leases still open. */
  async #reapIdle(open: LeaseRecord[], now: number, report: EnforcementReport): Promise<LeaseRecord[]> {
    const idleMs = this.#p.options.idleTimeoutMs;
    if (idleMs === undefined) return open;
    const reaped = new Set<string>();
    for (const lease of open) {
      const quietMs = now - lease.heartbeatAtMs;
      if (quietMs <= idleMs) continue;
      const reason = `idle: no heartbeat for ${quietMs} ms (idleTimeoutMs ${idleMs})`;
      const terminated = await this.#stop(lease, reason, "idle");
      report.reaped.push({ leaseId: lease.leaseId, reason, terminated });
      reaped.add(lease.leaseId);
    }
    return open.filter((l) => !reaped.has(l.leaseId));
  }

  /** Step 2: reports leases running past their reserved lifetime (logged and emitted once per lease). */
  #reportOverruns(open: readonly LeaseRecord[], now: number, report: EnforcementReport): void {
    for (const lease of open) {
      const overrunMs = now - (lease.createdAtMs + lease.lifetimeMs);
      if (overrunMs <= 0) continue;
      report.overruns.push({ leaseId: lease.leaseId, overrunMs });
      if (this.#reportedOverruns.has(lease.leaseId)) continue;
      this.#reportedOverruns.add(lease.leaseId);
      this.#p.logger.warn(
        `Lease ${lease.leaseId} is running past its reserved lifetime; extend it or stop the sandbox.`,
        { leaseId: lease.leaseId, overrunMs },
      );
      this.#p.events.emit({ type: "overrun", leaseId: lease.leaseId, overrunMs });
    }
  }

  /** Step 3: the open leases counted in each budget (per scope and period). */
  #groupByBudget(open: readonly LeaseRecord[]): BudgetGroup[] {
    const groups = new Map<string, BudgetGroup>();
    for (const lease of open) {
      for (const binding of bindBudgets(this.#p.budgets, lease.scope, lease.day, lease.month)) {
        const key = `${binding.budget.name}\u0000${binding.scopeKey}\u0000${binding.periodKey}`;
        const group = groups.get(key) ?? { binding, leases: [] };
        groups.set(key, group);
        group.leases.push(lease);
      }
    }
    return [...groups.values()];
  }

  /**
   * Step 4: for each `terminate` budget that spent + the projected cost of its running leases would cross,
   * stops the newest leases until it no longer would. Returns the ids of the leases stopped.
   */
  async #stopOverBudget(groups: BudgetGroup[], now: number, report: EnforcementReport): Promise<Set<string>> {
    const stopped = new Set<string>();
    // A running lease may cost up to its reservation, or more once it outlives it: project one interval ahead.
    const horizonMs = this.#p.options.enforceIntervalMs;
    const projected = (l: LeaseRecord): number =>
      Math.max(
        toNanoUsd(l.reservedUsd),
        toNanoUsd((l.worstCaseRateUsdPerSecond * (now - l.createdAtMs + horizonMs)) / 1000),
      );
    for (const { binding, leases } of groups) {
      if (binding.budget.enforcement !== "terminate") continue;
      const limitNano = toNanoUsd(binding.budget.limitUsd);
      let total = this.#spentNano(binding) + leases.reduce((sum, l) => sum + projected(l), 0);
      const newestFirst = [...leases].sort((a, b) => b.createdAtMs - a.createdAtMs);
      for (const lease of newestFirst) {
        if (total <= limitNano) break;
        if (stopped.has(lease.leaseId)) continue;
        const reason =
          `budget "${binding.budget.name}" (${bindingLabel(binding)}) would be crossed before the lease ends: ` +
          `projected ${formatUsd(fromNanoUsd(total))} > limit ${formatUsd(binding.budget.limitUsd)}`;
        const terminated = await this.#stop(lease, reason, "budget");
        report.terminated.push({ leaseId: lease.leaseId, reason, terminated });
        if (!terminated) continue;
        stopped.add(lease.leaseId);
        total -= projected(lease) - toNanoUsd(this.#p.accruedUsd(lease, now));
      }
    }
    return stopped;
  }

  /** Step 5: warns at each budget's thresholds of spend, counting what running leases have accrued. */
  async #warnOnAccruedSpend(
    groups: BudgetGroup[],
    stopped: ReadonlySet<string>,
    now: number,
    report: EnforcementReport,
  ): Promise<void> {
    const { ledger } = this.#p;
    for (const { binding, leases } of groups) {
      const live = leases.filter((l) => !stopped.has(l.leaseId));
      const accrued = live.reduce((sum, l) => sum + toNanoUsd(this.#p.accruedUsd(l, now)), 0);
      const spent = this.#spentNano(binding);
      const crossed = await this.#p.commit.batched(() =>
        ledger.immediate(() => crossedThresholds(ledger, binding, 0, spent + accrued, now)),
      );
      for (const w of crossed) {
        this.#p.events.warning(w);
        report.warnings.push(w);
      }
    }
  }

  #spentNano(binding: BudgetBinding): number {
    return this.#p.commit.guarded(() => this.#p.ledger.getCounter(binding.scopeKey, binding.periodKey))
      .spentNanoUsd;
  }

  /** Stops a lease's sandbox through its hooks (or the inventory) and settles it. Returns whether it was stopped. */
  async #stop(lease: LeaseRecord, reason: string, cause: "idle" | "budget"): Promise<boolean> {
    const terminated = await this.#terminate(lease, reason);
    // An idle lease is settled even when its sandbox could not be stopped: its holder is gone, and the orphan
    // sweeper terminates a sandbox whose lease is settled. A budget stop without a stop keeps the lease open.
    if (terminated || cause === "idle")
      await this.#p.settle(lease.leaseId, { reason: `${cause}: ${reason}` });
    else if (this.#unstoppable.has(lease.leaseId))
      return false; // reported on an earlier pass
    else this.#unstoppable.add(lease.leaseId);
    this.#p.logger.warn(
      terminated
        ? `Stopped lease ${lease.leaseId}: ${reason}`
        : `Cannot stop the sandbox of lease ${lease.leaseId} (${reason}): no terminate hook is registered in this ` +
            `process and no inventory can reach it.`,
      { leaseId: lease.leaseId, cause },
    );
    this.#p.events.emit({
      type: "terminate",
      leaseId: lease.leaseId,
      ...(lease.sandboxId ? { sandboxId: lease.sandboxId } : {}),
      cause,
      reason,
      terminated,
    });
    return terminated;
  }

  /** Calls the lease's terminate hooks, or the inventory when it has none. True when one succeeded. */
  async #terminate(lease: LeaseRecord, reason: string): Promise<boolean> {
    const hooks = [...(this.#hooks.get(lease.leaseId) ?? [])];
    const { inventory, logger } = this.#p;
    let terminated = false;
    if (hooks.length > 0) {
      for (const hook of hooks) {
        try {
          await hook(reason);
          terminated = true;
        } catch (err) {
          logger.error(`Terminate hook of lease ${lease.leaseId} failed`, {
            leaseId: lease.leaseId,
            error: (err as Error).message,
          });
        }
      }
    } else if (inventory && lease.sandboxId && lease.provider === inventory.provider) {
      try {
        await inventory.terminate(lease.sandboxId);
        terminated = true;
      } catch (err) {
        logger.error(`Terminating sandbox ${lease.sandboxId} of lease ${lease.leaseId} failed`, {
          leaseId: lease.leaseId,
          sandboxId: lease.sandboxId,
          error: (err as Error).message,
        });
      }
    }
    return terminated;
  }
}

/** Reservations per minute in this process (`maxReservationsPerMinute`): stops create loops. */
export class ReservationRateLimit {
  readonly #max: number | undefined;
  readonly #recent: number[] = [];

  constructor(maxPerMinute: number | undefined) {
    this.#max = maxPerMinute;
  }

  /** Throws RATE_LIMITED when one more reservation at `nowMs` would pass the limit. */
  check(nowMs: number): void {
    const max = this.#max;
    if (max === undefined) return;
    const recent = this.#recent;
    while (recent.length && recent[0]! <= nowMs - 60_000) recent.shift();
    if (recent.length >= max) {
      throw new RuntimeError(
        "RATE_LIMITED",
        `${recent.length} reservations in the last minute reached maxReservationsPerMinute (${max}). ` +
          `If sandboxes are created in a loop, stop it; otherwise wait or raise maxReservationsPerMinute.`,
      );
    }
  }

  /** Records a reservation made at `nowMs` (nothing is kept without a limit). */
  record(nowMs: number): void {
    if (this.#max !== undefined) this.#recent.push(nowMs);
  }
}
