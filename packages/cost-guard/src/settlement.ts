import type { SettlementInfo } from "@agent-runtime/runtime-core";
import { InvalidArgumentError, RuntimeError } from "@agent-runtime/runtime-core";
import { bindBudgets, type ResolvedBudget } from "./budgets.js";
import type { Clock } from "./clock.js";
import { chargeCounters } from "./counters.js";
import type { CostEvents } from "./events.js";
import type { AfterCommit } from "./group-commit.js";
import { fromNanoUsd, type Ledger, toNanoUsd } from "./ledger.js";

/** The result of settling: runtime-core's {@link SettlementInfo} plus what was released. */
export interface Settlement extends SettlementInfo {
  /** True when the lease had been settled before: nothing was charged this time. */
  alreadySettled: boolean;
  /** Reserved money returned to the budgets, in USD. */
  releasedUsd: number;
  reason: string;
}

/** Options of `CostGuard.settle`. */
export interface SettleOptions {
  /** Why the lease ended (stored in the ledger). @default "closed" */
  reason?: string;
  /** When the sandbox stopped, epoch ms. @default now */
  endedAtMs?: number;
  /** The real cost when the caller knows it (e.g. from the provider's bill), replacing duration x rate. */
  costUsd?: number;
}

/** Options of `CostGuard.settleOrphan` and `CostGuard.settleOrphans`. */
export interface OrphanSettleOptions {
  /**
   * When the sandbox stopped, epoch ms; clamped to [the lease's reservation time, now]. Pass what you know
   * (e.g. the lease's `heartbeatAtMs`, or when the host went down) to avoid over-charging.
   * @default min(now, reserved at + lifetimeMs): the latest the sandbox can have run (never under-charges)
   */
  endedAtMs?: number;
  /** Stored as the lease's settle reason. @default "orphan: sandbox gone" */
  reason?: string;
  /** The real cost when the caller knows it, replacing duration x rate. */
  costUsd?: number;
}

/** Which open leases `CostGuard.settleOrphans` settles: every field given must match (at least one). */
export interface OrphanFilter {
  sessionId?: string;
  userId?: string;
  /** The lease's provider, e.g. `"local"` or `"modal"`. */
  provider?: string;
  sandboxId?: string;
}

/** What a {@link Settler} works with (one object, shared with the guard's other parts). */
export interface SettlerParts {
  ledger: Ledger;
  clock: Clock;
  ledgerPath: string;
  budgets: readonly ResolvedBudget[];
  events: CostEvents;
  /** Called after the commit that settled `leaseId` (the guard forgets its terminate hooks). */
  onSettled(leaseId: string): void;
}

/** Throws INVALID_ARGUMENT for a filter with no field (it would settle every open lease). */
export function assertOrphanFilter(filter: OrphanFilter): void {
  const fields = (["sessionId", "userId", "provider", "sandboxId"] as const).filter(
    (k) => filter[k] !== undefined,
  );
  if (fields.length === 0) {
    throw new InvalidArgumentError(
      "settleOrphans needs at least one of sessionId, userId, provider or sandboxId (it would settle every open lease).",
      ["filter: empty"],
    );
  }
}

/**
 * Closes leases exactly once: charges them (duration x rate, or a known cost), releases the rest of their
 * reservation from the budget counters and reports thresholds crossed, after the commit. Each method runs in
 * its own `immediate` transaction (a savepoint inside a group commit).
 */
export class Settler {
  readonly #p: SettlerParts;

  constructor(parts: SettlerParts) {
    this.#p = parts;
  }

  /** Settles a lease; a settled lease returns its first settlement with `alreadySettled: true`. */
  settle(leaseId: string, options: SettleOptions, after: AfterCommit): Settlement {
    if (options.costUsd !== undefined && !(options.costUsd >= 0 && Number.isFinite(options.costUsd))) {
      throw new InvalidArgumentError(`settle costUsd must be a finite number >= 0, got ${options.costUsd}.`, [
        "costUsd: invalid",
      ]);
    }
    const { ledger } = this.#p;
    const now = this.#p.clock.now();
    const reason = options.reason ?? "closed";
    const costNano = options.costUsd === undefined ? undefined : toNanoUsd(options.costUsd);
    return ledger.immediate((): Settlement => {
      const settled = ledger.settle(leaseId, now, options.endedAtMs ?? now, costNano, reason);
      if (!settled) return this.#firstSettlement(leaseId, reason);
      const charged = settled.chargedNanoUsd;
      const bindings = bindBudgets(this.#p.budgets, settled.scope, settled.day, settled.month);
      const warnings = chargeCounters(ledger, bindings, charged, settled.reservedNanoUsd, now);
      after.push(() => {
        this.#p.onSettled(leaseId);
        for (const w of warnings) this.#p.events.warning(w);
      });
      return {
        leaseId,
        chargedUsd: fromNanoUsd(charged),
        durationMs: settled.durationMs,
        alreadySettled: false,
        releasedUsd: fromNanoUsd(Math.max(0, settled.reservedNanoUsd - charged)),
        reason,
      };
    });
  }

  /** What an earlier settle of `leaseId` recorded; NOT_FOUND for an unknown id. */
  #firstSettlement(leaseId: string, reason: string): Settlement {
    const lease = this.#p.ledger.getLease(leaseId);
    if (!lease) {
      throw new RuntimeError(
        "NOT_FOUND",
        `No lease ${leaseId} in ledger ${this.#p.ledgerPath}: nothing to settle.`,
      );
    }
    return {
      leaseId,
      chargedUsd: lease.chargedUsd ?? 0,
      durationMs: lease.durationMs ?? 0,
      alreadySettled: true,
      releasedUsd: 0,
      reason: lease.settleReason ?? reason,
    };
  }

  /** Settles an open lease whose sandbox is gone, charging up to `endedAtMs` clamped to [reserved at, now]. */
  settleOrphan(leaseId: string, options: OrphanSettleOptions, after: AfterCommit): Settlement {
    const lease = this.#p.ledger.getLease(leaseId);
    const reason = options.reason ?? "orphan: sandbox gone";
    if (!lease || lease.status === "settled") return this.settle(leaseId, { reason }, after);
    const now = this.#p.clock.now();
    const latest = Math.min(now, lease.createdAtMs + lease.lifetimeMs);
    const endedAtMs = Math.min(now, Math.max(lease.createdAtMs, options.endedAtMs ?? latest));
    return this.settle(
      leaseId,
      { reason, endedAtMs, ...(options.costUsd !== undefined ? { costUsd: options.costUsd } : {}) },
      after,
    );
  }

  /** {@link Settler.settleOrphan} for every open lease matching `filter`, oldest first, in one transaction. */
  settleOrphans(filter: OrphanFilter, options: OrphanSettleOptions, after: AfterCommit): Settlement[] {
    assertOrphanFilter(filter);
    const { ledger } = this.#p;
    return ledger.immediate(() =>
      ledger
        .openLeases()
        .filter(
          (l) =>
            (filter.sessionId === undefined || l.scope.sessionId === filter.sessionId) &&
            (filter.userId === undefined || l.scope.userId === filter.userId) &&
            (filter.provider === undefined || l.provider === filter.provider) &&
            (filter.sandboxId === undefined || l.sandboxId === filter.sandboxId),
        )
        .map((l) => this.settleOrphan(l.leaseId, options, after)),
    );
  }
}
