import { randomUUID } from "node:crypto";
import type { CostScope, LeaseInfo } from "@agent-runtime/runtime-core";
import { InvalidArgumentError, LEASE_TAG_KEY, parseOrThrow, RuntimeError } from "@agent-runtime/runtime-core";
import { z } from "zod";
import { bindBudgets, type ResolvedBudget } from "./budgets.js";
import type { Clock } from "./clock.js";
import {
  type BudgetCheckRow,
  checkBindings,
  moveReservation,
  reserveCounters,
  type UtcPeriodCache,
} from "./counters.js";
import type { BudgetExceededDetails } from "./errors.js";
import { type CostEstimate, type CostSpec, CostSpecSchema, estimateParsed } from "./estimate.js";
import { fromNanoUsd, type LeaseRecord, type Ledger } from "./ledger.js";
import type { ResolvedCostGuardOptions } from "./options.js";
import type { PriceTable } from "./prices.js";

/** What {@link LeaseBook.reserve} takes: runtime-core's reservation request, with an optional scope. */
export interface ReserveRequest {
  spec: CostSpec;
  scope?: CostScope;
  /** How long the sandbox may live (its timeout), in ms. */
  lifetimeMs: number;
}

/** A reservation: runtime-core's {@link LeaseInfo} plus the estimate and the tags to put on the sandbox. */
export interface Lease extends LeaseInfo {
  /** When the reserved lifetime ends, epoch ms. */
  expiresAtMs: number;
  /** Put these on the sandbox at create time so the orphan sweeper can find it. */
  tags: Record<string, string>;
  estimate: CostEstimate;
}

/** What `CostGuard.checkBudget` answers. */
export interface BudgetCheck {
  /** True when `reserve` with this request would pass every budget now. */
  fits: boolean;
  /** The worst case `reserve` would hold, in USD. */
  requestedUsd: number;
  estimate: CostEstimate;
  /** Every budget that applies to the request's scope. */
  budgets: BudgetCheckRow[];
  /** The budget `reserve` would name in BUDGET_EXCEEDED (same fields as that error's `details`). */
  exceeded?: BudgetExceededDetails;
}

const ScopeSchema = z.object({
  userId: z.string().min(1).optional(),
  sessionId: z.string().min(1).optional(),
  tags: z.record(z.string().min(1), z.string()).optional(),
});

/** What `rescope` takes: a misspelled key would move the lease to no user silently, so unknown keys fail. */
const RescopeSchema = ScopeSchema.strict();

const ReserveRequestSchema = z.object({
  spec: CostSpecSchema,
  scope: ScopeSchema.default({}),
  lifetimeMs: z.number().int().positive(),
});

/** What a {@link LeaseBook} works with (one object, shared with the guard's other parts). */
export interface LeaseBookParts {
  ledger: Ledger;
  clock: Clock;
  options: Pick<ResolvedCostGuardOptions, "ledgerPath" | "chargeAt">;
  prices: PriceTable;
  budgets: readonly ResolvedBudget[];
  periods: UtcPeriodCache;
  /** Throws RATE_LIMITED when one more reservation now would pass the limit. */
  checkRate(nowMs: number): void;
  /** Records a reservation made at `nowMs` for the rate limit. */
  recordReservation(nowMs: number): void;
}

/**
 * Opens and holds leases: reserve (budgets checked atomically), activate, heartbeat, extend, rescope. Each
 * method is synchronous and writes in one statement or its own `immediate` transaction, so it runs alone or
 * inside a group commit alike. Settling is `settlement.ts`'s.
 */
export class LeaseBook {
  readonly #p: LeaseBookParts;
  /** Every lease id of this ledger starts with this. */
  readonly leasePrefix: string;

  constructor(parts: LeaseBookParts) {
    this.#p = parts;
    this.leasePrefix = `cg-${parts.ledger.ledgerId}-`;
  }

  /** Checks every budget that applies and writes the lease with its worst case reserved, or throws. */
  reserve(request: ReserveRequest): Lease {
    const { ledger, clock, prices } = this.#p;
    // One parse of the whole request; only the validated pricing fields of the spec are stored (a caller's
    // spec object may carry more, such as env or image).
    const req = parseOrThrow(ReserveRequestSchema, request, "reservation request");
    const spec: CostSpec = req.spec;
    const estimate = estimateParsed(spec, req.lifetimeMs, prices);
    const scope: CostScope = req.scope;
    const now = clock.now();
    this.#p.checkRate(now);
    const { day, month } = this.#p.periods.at(now);
    const bindings = bindBudgets(this.#p.budgets, scope, day, month);
    const reservedNano = Math.ceil(estimate.worstCaseUsd * 1e9);
    const leaseId = this.#newLeaseId();
    const chargeRate =
      this.#p.options.chargeAt === "request" ? estimate.perSecondUsd : estimate.worstCasePerSecondUsd;
    ledger.immediate(() => {
      reserveCounters(ledger, bindings, reservedNano, "Reservation");
      ledger.insertLease({
        leaseId,
        provider: estimate.provider,
        spec,
        scope,
        ...(estimate.gpu ? { gpuType: estimate.gpu.type } : {}),
        gpuCount: estimate.gpu?.count ?? 0,
        chargeRateUsdPerSecond: chargeRate,
        worstCaseRateUsdPerSecond: estimate.worstCasePerSecondUsd,
        reservedNanoUsd: reservedNano,
        lifetimeMs: req.lifetimeMs,
        createdAtMs: now,
        day,
        month,
        priceTableVersion: prices.version,
      });
    });
    this.#p.recordReservation(now);
    return {
      leaseId,
      reservedUsd: fromNanoUsd(reservedNano),
      lifetimeMs: req.lifetimeMs,
      expiresAtMs: now + req.lifetimeMs,
      tags: { [LEASE_TAG_KEY]: leaseId },
      estimate,
    };
  }

  /**
   * `cg-<ledger id>-<12 hex of wall-clock ms><20 random hex>`: time-ordered, so new leases append to the
   * primary-key index instead of dirtying random pages of it (fewer pages written per commit).
   */
  #newLeaseId(): string {
    const random = randomUUID().replaceAll("-", "").slice(0, 20);
    return `${this.leasePrefix}${Date.now().toString(16).padStart(12, "0")}${random}`;
  }

  /** Whether a request would fit every budget now (a read); see `CostGuard.checkBudget`. */
  checkBudget(request: ReserveRequest): BudgetCheck {
    const req = parseOrThrow(ReserveRequestSchema, request, "reservation request");
    const estimate = estimateParsed(req.spec, req.lifetimeMs, this.#p.prices);
    const { day, month } = this.#p.periods.at(this.#p.clock.now());
    const requestedNano = Math.ceil(estimate.worstCaseUsd * 1e9);
    const bindings = bindBudgets(this.#p.budgets, req.scope, day, month);
    const { budgets, exceeded } = checkBindings(this.#p.ledger, bindings, requestedNano);
    return {
      fits: exceeded === undefined,
      requestedUsd: fromNanoUsd(requestedNano),
      estimate,
      budgets,
      ...(exceeded ? { exceeded } : {}),
    };
  }

  /** The open lease, or NOT_FOUND (unknown id) / FAILED_PRECONDITION (settled) naming what was attempted. */
  requireOpen(leaseId: string, what: string): LeaseRecord {
    const lease = this.#p.ledger.getLease(leaseId);
    if (!lease) {
      throw new RuntimeError(
        "NOT_FOUND",
        `No lease ${leaseId} in ledger ${this.#p.options.ledgerPath}: reserve one first.`,
      );
    }
    if (lease.status === "settled") {
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        `Cannot ${what} lease ${leaseId}: it was settled (${lease.settleReason ?? "closed"}). Stop the sandbox, ` +
          `or reserve a new lease.`,
      );
    }
    return lease;
  }

  /** Records that the sandbox for a lease exists. Idempotent for the same sandbox id. */
  activate(leaseId: string, sandboxId: string): void {
    if (!sandboxId) throw new InvalidArgumentError("activate needs a sandbox id.", ["sandboxId: empty"]);
    const { ledger } = this.#p;
    ledger.immediate(() => {
      const lease = this.requireOpen(leaseId, "activate");
      if (lease.sandboxId !== undefined && lease.sandboxId !== sandboxId) {
        throw new RuntimeError(
          "FAILED_PRECONDITION",
          `Lease ${leaseId} is already active on sandbox ${lease.sandboxId}; reserve one lease per sandbox.`,
        );
      }
      if (lease.sandboxId === undefined) ledger.activate(leaseId, sandboxId, this.#p.clock.now());
    });
  }

  /** Records a heartbeat; FAILED_PRECONDITION once the lease is settled, NOT_FOUND for an unknown id. */
  heartbeat(leaseId: string): void {
    if (!this.#p.ledger.heartbeat(leaseId, this.#p.clock.now())) this.requireOpen(leaseId, "heartbeat");
  }

  /** Reserves `additionalMs` more lifetime at the worst-case rate, re-checking every hard budget. */
  extend(leaseId: string, additionalMs: number): LeaseInfo & { expiresAtMs: number } {
    if (!Number.isInteger(additionalMs) || additionalMs <= 0) {
      throw new InvalidArgumentError(`extend needs a whole positive number of ms, got ${additionalMs}.`, [
        "additionalMs: must be a positive integer",
      ]);
    }
    const { ledger } = this.#p;
    return ledger.immediate(() => {
      const lease = this.requireOpen(leaseId, "extend");
      const extraNano = Math.ceil(((lease.worstCaseRateUsdPerSecond * additionalMs) / 1000) * 1e9);
      reserveCounters(ledger, this.#bindingsOf(lease), extraNano, `Extending lease ${leaseId}`);
      ledger.extend(leaseId, extraNano, additionalMs);
      const lifetimeMs = lease.lifetimeMs + additionalMs;
      return {
        leaseId,
        reservedUsd: fromNanoUsd(ledger.reservedNanoUsd(leaseId)!),
        lifetimeMs,
        expiresAtMs: lease.createdAtMs + lifetimeMs,
      };
    });
  }

  /**
   * Moves an open lease to `scope` (user, session and tags all replaced), in one transaction: its reservation
   * leaves the counters only the old scope used and joins those only the new one uses, checked against their
   * hard limits (BUDGET_EXCEEDED leaves the lease as it was). Counts as a heartbeat.
   */
  rescope(leaseId: string, scope: CostScope): void {
    const to: CostScope = parseOrThrow(RescopeSchema, scope ?? {}, "lease scope", "scope");
    const { ledger } = this.#p;
    ledger.immediate(() => {
      const lease = this.requireOpen(leaseId, "rescope");
      moveReservation(
        ledger,
        this.#bindingsOf(lease),
        bindBudgets(this.#p.budgets, to, lease.day, lease.month),
        ledger.reservedNanoUsd(leaseId)!,
        `Moving lease ${leaseId} to ${describeScope(to)}`,
        `The lease keeps its scope (${describeScope(lease.scope)}). Settle finished leases of the new scope, ` +
          "or raise limitUsd.",
      );
      ledger.rescope(leaseId, to, this.#p.clock.now());
    });
  }

  #bindingsOf(lease: Pick<LeaseRecord, "scope" | "day" | "month">) {
    return bindBudgets(this.#p.budgets, lease.scope, lease.day, lease.month);
  }
}

/** A scope for messages: `user alice, session s-1, tags team=ml` (or `no user, session or tags`). */
export function describeScope(scope: CostScope): string {
  const parts = [
    ...(scope.userId !== undefined ? [`user ${scope.userId}`] : []),
    ...(scope.sessionId !== undefined ? [`session ${scope.sessionId}`] : []),
  ];
  const tags = Object.entries(scope.tags ?? {});
  if (tags.length > 0) parts.push(`tags ${tags.map(([k, v]) => `${k}=${v}`).join(" ")}`);
  return parts.length > 0 ? parts.join(", ") : "no user, session or tags";
}
