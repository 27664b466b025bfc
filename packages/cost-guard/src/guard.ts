import { randomUUID } from "node:crypto";
import type { CostHooks, CostScope, LeaseInfo, Logger, SettlementInfo } from "@agent-runtime/runtime-core";
import { InvalidArgumentError, parseOrThrow, quietLogger, RuntimeError } from "@agent-runtime/runtime-core";
import { z } from "zod";
import { type BudgetBinding, bindBudgets, bindingLabel, type ResolvedBudget, utcPeriods } from "./budgets.js";
import { type Clock, systemClock } from "./clock.js";
import {
  type BudgetExceededDetails,
  budgetExceededError,
  formatUsd,
  isBusyError,
  toCostError,
} from "./errors.js";
import {
  type CostEstimate,
  type CostSpec,
  CostSpecSchema,
  estimateCost,
  estimateParsed,
} from "./estimate.js";
import { fromNanoUsd, type LeaseRecord, Ledger, toNanoUsd } from "./ledger.js";
import type { ResolvedCostGuardOptions } from "./options.js";
import { loadPriceTableFile, type PriceTable, resolvePriceTable } from "./prices.js";
import {
  type BudgetStatusRow,
  budgetStatus,
  buildReport,
  type ReportQuery,
  type ReportRow,
} from "./report.js";
import { LEASE_TAG_KEY, type SandboxInventory, type SweepOptions, type SweepReport } from "./sweeper.js";

/** Something that happened in enforcement, for hosts to show or alert on (also logged). */
export type CostEvent =
  | {
      type: "warning";
      budget: string;
      scopeKey: string;
      periodKey: string;
      percent: number;
      spentUsd: number;
      limitUsd: number;
    }
  | {
      type: "terminate";
      leaseId: string;
      sandboxId?: string;
      cause: "idle" | "budget";
      reason: string;
      /** False when no terminate hook or inventory could stop the sandbox. */
      terminated: boolean;
    }
  | { type: "overrun"; leaseId: string; overrunMs: number }
  | { type: "orphan"; sandboxId: string; leaseId: string; reason: string };

/** Services a cost guard uses that are not plain options. */
export interface CostGuardServices {
  /** @default the wall clock */
  clock?: Clock;
  /** @default quietLogger (warnings and errors only) */
  logger?: Logger;
  /** Called for every warning, termination, overrun and orphan. */
  onEvent?: (event: CostEvent) => void;
  /** Used to stop sandboxes of leases that have no terminate hook in this process. */
  inventory?: SandboxInventory;
}

/** A reservation: runtime-core's {@link LeaseInfo} plus the estimate and the tags to put on the sandbox. */
export interface Lease extends LeaseInfo {
  /** When the reserved lifetime ends, epoch ms. */
  expiresAtMs: number;
  /** Put these on the sandbox at create time so the orphan sweeper can find it. */
  tags: Record<string, string>;
  estimate: CostEstimate;
}

/** The result of settling: runtime-core's {@link SettlementInfo} plus what was released. */
export interface Settlement extends SettlementInfo {
  /** True when the lease had been settled before: nothing was charged this time. */
  alreadySettled: boolean;
  /** Reserved money returned to the budgets, in USD. */
  releasedUsd: number;
  reason: string;
}

/** Options of {@link CostGuard.settle}. */
export interface SettleOptions {
  /** Why the lease ended (stored in the ledger). @default "closed" */
  reason?: string;
  /** When the sandbox stopped, epoch ms. @default now */
  endedAtMs?: number;
  /** The real cost when the caller knows it (e.g. from the provider's bill), replacing duration x rate. */
  costUsd?: number;
}

/** Options of {@link CostGuard.settleOrphan} and {@link CostGuard.settleOrphans}. */
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

/** Which open leases {@link CostGuard.settleOrphans} settles: every field given must match (at least one). */
export interface OrphanFilter {
  sessionId?: string;
  userId?: string;
  /** The lease's provider, e.g. `"local"` or `"modal"`. */
  provider?: string;
  sandboxId?: string;
}

/** One budget as {@link CostGuard.checkBudget} sees it for a request. Money in USD. */
export interface BudgetCheckRow {
  budget: string;
  scopeKey: string;
  periodKey: string;
  enforcement: "refuse" | "terminate" | "warn";
  limitUsd: number;
  spentUsd: number;
  reservedUsd: number;
  /** What `reserve` would hold: the request's worst case. */
  requestedUsd: number;
  /** `limit - spent - reserved` (may be negative). */
  remainingUsd: number;
  /** `spent + reserved + requested <= limit`, or a `warn` budget (which never refuses). */
  fits: boolean;
}

/** What {@link CostGuard.checkBudget} answers. */
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

/** What one enforcement pass did. */
export interface EnforcementReport {
  atMs: number;
  /** Leases ended by the idle reaper. */
  reaped: { leaseId: string; reason: string; terminated: boolean }[];
  /** Leases stopped because a `terminate` budget would be crossed. */
  terminated: { leaseId: string; reason: string; terminated: boolean }[];
  /** Thresholds crossed in this pass. */
  warnings: Extract<CostEvent, { type: "warning" }>[];
  /** Leases running past their reserved lifetime. */
  overruns: { leaseId: string; overrunMs: number }[];
}

const ReserveRequestSchema = z.object({
  spec: CostSpecSchema,
  scope: z
    .object({
      userId: z.string().min(1).optional(),
      sessionId: z.string().min(1).optional(),
      tags: z.record(z.string().min(1), z.string()).optional(),
    })
    .default({}),
  lifetimeMs: z.number().int().positive(),
});

type TerminateHook = (reason: string) => Promise<void>;
/** An operation waiting for the next group commit. */
interface QueuedOp {
  op: (after: AfterCommit) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** performance.now() after which a locked ledger fails this operation. */
  deadline: number;
}
/** Effects to run once the transaction that made them true has committed. */
type AfterCommit = (() => void)[];

/** What {@link CostGuard.reserve} takes: runtime-core's reservation request, with an optional scope. */
export interface ReserveRequest {
  spec: CostSpec;
  scope?: CostScope;
  /** How long the sandbox may live (its timeout), in ms. */
  lifetimeMs: number;
}

/**
 * Budgets that stop runaway spend before it happens: implements runtime-core's {@link CostHooks}.
 * A runtime calls `reserve` before it creates a sandbox (the worst case is written to the ledger atomically,
 * or BUDGET_EXCEEDED is thrown), `activate` with the sandbox id, `heartbeat` while it is used and `settle`
 * at close. Create it with {@link costGuard} or the `cost-guard` plugin.
 *
 * @example
 * ```ts
 * const guard = costGuard({ ledgerPath: "cost.db", budgets: [{ scope: "user", period: "daily", limitUsd: 5 }] });
 * const lease = await guard.reserve({ spec: { provider: "modal", cpuCores: 1, memoryMiB: 2048 },
 *   scope: { userId: "alice" }, lifetimeMs: 600_000 });
 * // create the sandbox with lease.tags, then:
 * await guard.activate(lease.leaseId, sandboxId);
 * await guard.settle(lease.leaseId);
 * ```
 */
export class CostGuard implements CostHooks {
  /** The tag key under which sandboxes carry their lease id. */
  static readonly LEASE_TAG_KEY = LEASE_TAG_KEY;
  readonly options: ResolvedCostGuardOptions;
  /** The resolved price table. */
  readonly prices: PriceTable;
  readonly budgets: readonly ResolvedBudget[];
  readonly #ledger: Ledger;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #onEvent: ((event: CostEvent) => void) | undefined;
  readonly #inventory: SandboxInventory | undefined;
  readonly #hooks = new Map<string, Set<TerminateHook>>();
  readonly #reportedOverruns = new Set<string>();
  readonly #unstoppable = new Set<string>();
  readonly #recentReservations: number[] = [];
  readonly #leasePrefix: string;
  readonly #queue: QueuedOp[] = [];
  /** A flush is scheduled (next check phase, or a retry after SQLITE_BUSY). */
  #flushScheduled = false;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Consecutive SQLITE_BUSY retries of the current batch (for the backoff). */
  #busyRetries = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastDay: { startMs: number; periods: { day: string; month: string } } = {
    startMs: Number.NaN,
    periods: { day: "", month: "" },
  };
  #enforcing: Promise<EnforcementReport> | undefined;

  constructor(options: ResolvedCostGuardOptions, services: CostGuardServices = {}) {
    this.options = options;
    this.#clock = services.clock ?? systemClock;
    this.#logger = services.logger ?? quietLogger;
    this.#onEvent = services.onEvent;
    this.#inventory = services.inventory;
    const base = options.pricesFile ? loadPriceTableFile(options.pricesFile) : undefined;
    this.prices = resolvePriceTable(options.prices, base);
    this.budgets = options.budgets;
    // Opening waits (blocking) up to busyTimeoutMs, only when it must write (a new ledger, changed budgets).
    this.#ledger = new Ledger({
      path: options.ledgerPath,
      busyTimeoutMs: options.busyTimeoutMs,
      synchronous: options.synchronous,
      createDirectory: options.createLedgerDirectory,
      driver: options.sqliteDriver,
    });
    this.#leasePrefix = `cg-${this.#ledger.ledgerId}-`;
    try {
      this.#syncBudgets();
      // From here on a locked ledger fails a statement at once; the async methods retry without blocking.
      this.#ledger.setBusyTimeout(0);
    } catch (err) {
      this.#ledger.close();
      throw toCostError(err, options.ledgerPath);
    }
    if (options.enforceIntervalMs > 0) {
      this.#timer = setInterval(() => {
        this.enforce().catch((err: unknown) =>
          this.#logger.error("cost-guard enforcement failed", {
            error: toCostError(err, this.options.ledgerPath).message,
          }),
        );
      }, options.enforceIntervalMs);
      this.#timer.unref();
    }
  }

  /** Records the budgets in the ledger (for the CLI) and rebuilds counters when their shapes changed. */
  #syncBudgets(): void {
    const shapes = [...new Map(this.budgets.map((b) => [`${b.scope}|${b.period}`, b])).values()]
      .map((b) => ({ scope: b.parsedScope, period: b.period, key: `${b.scope}|${b.period}` }))
      .sort((a, b) => a.key.localeCompare(b.key));
    const fingerprint = JSON.stringify(shapes.map((s) => s.key));
    const stored = JSON.stringify(this.budgets.map(({ parsedScope: _p, ...b }) => b));
    const priceTable = JSON.stringify({
      version: this.prices.version,
      effectiveDate: this.prices.effectiveDate,
    });
    const unchanged = (): boolean =>
      this.#ledger.getMeta("counter_shapes") === fingerprint &&
      this.#ledger.getMeta("budgets") === stored &&
      this.#ledger.getMeta("price_table") === priceTable;
    // Read first: reopening a ledger with the same budgets takes no write lock (and so never waits).
    if (unchanged()) return;
    this.#ledger.immediate(() => {
      if (this.#ledger.getMeta("counter_shapes") !== fingerprint) {
        this.#ledger.rebuildCounters(shapes);
        this.#ledger.setMeta("counter_shapes", fingerprint);
      }
      this.#ledger.setMeta("budgets", stored);
      this.#ledger.setMeta("price_table", priceTable);
    });
  }

  /** Id of the ledger this guard writes to (the second part of every lease id). */
  get ledgerId(): string {
    return this.#ledger.ledgerId;
  }

  /** Prices a spec for a lifetime with this guard's price table (no reservation). */
  estimate(spec: CostSpec, lifetimeMs: number): CostEstimate {
    return estimateCost(spec, lifetimeMs, this.prices);
  }

  /**
   * Reserves the worst-case cost of a sandbox **before** it is created: atomically checks every budget
   * that applies (`spent + reserved + requested <= limit`) and writes the lease, or throws BUDGET_EXCEEDED
   * naming the budget, spent, reserved, limit and requested. Put `lease.tags` on the sandbox.
   * Concurrent calls are committed together (one transaction, one savepoint each).
   */
  async reserve(request: ReserveRequest): Promise<Lease> {
    return this.#batched(() => this.#reserve(request));
  }

  /** Synchronous form of {@link CostGuard.reserve} (one transaction per call). */
  reserveSync(request: ReserveRequest): Lease {
    return this.#now(() => this.#reserve(request));
  }

  #reserve(request: ReserveRequest): Lease {
    // One parse of the whole request; only the validated pricing fields of the spec are stored (a caller's
    // spec object may carry more, such as env or image).
    const req = parseOrThrow(ReserveRequestSchema, request, "reservation request");
    const spec: CostSpec = req.spec;
    const estimate = estimateParsed(spec, req.lifetimeMs, this.prices);
    const scope: CostScope = req.scope;
    const now = this.#clock.now();
    this.#checkRate(now);
    const { day, month } = this.#periods(now);
    const bindings = bindBudgets(this.budgets, scope, day, month);
    const reservedNano = Math.ceil(estimate.worstCaseUsd * 1e9);
    const leaseId = this.#newLeaseId();
    const chargeRate =
      this.options.chargeAt === "request" ? estimate.perSecondUsd : estimate.worstCasePerSecondUsd;
    this.#ledger.immediate(() => {
      this.#reserveCounters(bindings, reservedNano, "Reservation");
      this.#ledger.insertLease({
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
        priceTableVersion: this.prices.version,
      });
    });
    this.#recentReservations.push(now);
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
    return `${this.#leasePrefix}${Date.now().toString(16).padStart(12, "0")}${random}`;
  }

  /** {@link utcPeriods}, remembering the last UTC day seen (formatting a date on every call is measurable). */
  #periods(now: number): { day: string; month: string } {
    const cached = this.#lastDay;
    if (now >= cached.startMs && now < cached.startMs + 86_400_000) return cached.periods;
    const periods = utcPeriods(now);
    this.#lastDay = { startMs: Date.parse(`${periods.day}T00:00:00Z`), periods };
    return periods;
  }

  #checkRate(now: number): void {
    const max = this.options.maxReservationsPerMinute;
    if (max === undefined) return;
    const recent = this.#recentReservations;
    while (recent.length && recent[0]! <= now - 60_000) recent.shift();
    if (recent.length >= max) {
      throw new RuntimeError(
        "RATE_LIMITED",
        `${recent.length} reservations in the last minute reached maxReservationsPerMinute (${max}). ` +
          `If sandboxes are created in a loop, stop it; otherwise wait or raise maxReservationsPerMinute.`,
      );
    }
  }

  /**
   * Inside a transaction: adds `extraNano` to the reserved total of every counter the bindings use, each
   * guarded by the lowest hard limit on it (one conditional upsert per counter), or throws BUDGET_EXCEEDED
   * (rolling the transaction back) naming the first budget that does not fit.
   */
  #reserveCounters(bindings: readonly BudgetBinding[], extraNano: number, what: string): void {
    for (const group of groupByCounter(bindings)) {
      const hard = group.bindings.filter((b) => b.budget.enforcement !== "warn");
      if (hard.length === 0) {
        this.#ledger.bumpCounter(group.scopeKey, group.periodKey, 0, extraNano);
        continue;
      }
      const limitNano = Math.min(...hard.map((b) => toNanoUsd(b.budget.limitUsd)));
      if (
        extraNano <= limitNano &&
        this.#ledger.reserveWithin(group.scopeKey, group.periodKey, extraNano, limitNano)
      ) {
        continue;
      }
      const c = this.#ledger.getCounter(group.scopeKey, group.periodKey);
      const b =
        hard.find((x) => c.spentNanoUsd + c.reservedNanoUsd + extraNano > toNanoUsd(x.budget.limitUsd)) ??
        hard[0]!;
      throw budgetExceededError(
        {
          budget: b.budget.name,
          scopeKey: b.scopeKey,
          periodKey: b.periodKey,
          spentUsd: fromNanoUsd(c.spentNanoUsd),
          reservedUsd: fromNanoUsd(c.reservedNanoUsd),
          limitUsd: b.budget.limitUsd,
          requestedUsd: fromNanoUsd(extraNano),
        },
        what,
        bindingLabel(b),
      );
    }
  }

  #bindingsOf(lease: Pick<LeaseRecord, "scope" | "day" | "month">): BudgetBinding[] {
    return bindBudgets(this.budgets, lease.scope, lease.day, lease.month);
  }

  #requireOpen(leaseId: string, what: string): LeaseRecord {
    const lease = this.#ledger.getLease(leaseId);
    if (!lease) {
      throw new RuntimeError(
        "NOT_FOUND",
        `No lease ${leaseId} in ledger ${this.options.ledgerPath}: reserve one first.`,
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
  async activate(leaseId: string, sandboxId: string): Promise<void> {
    return this.#batched(() => this.#activate(leaseId, sandboxId));
  }

  #activate(leaseId: string, sandboxId: string): void {
    if (!sandboxId) throw new InvalidArgumentError("activate needs a sandbox id.", ["sandboxId: empty"]);
    this.#ledger.immediate(() => {
      const lease = this.#requireOpen(leaseId, "activate");
      if (lease.sandboxId !== undefined && lease.sandboxId !== sandboxId) {
        throw new RuntimeError(
          "FAILED_PRECONDITION",
          `Lease ${leaseId} is already active on sandbox ${lease.sandboxId}; reserve one lease per sandbox.`,
        );
      }
      if (lease.sandboxId === undefined) this.#ledger.activate(leaseId, sandboxId, this.#clock.now());
    });
  }

  /** Tells the reaper the lease's sandbox is in use. Throws FAILED_PRECONDITION once the lease is settled. */
  async heartbeat(leaseId: string): Promise<void> {
    return this.#batched(() => {
      if (!this.#ledger.heartbeat(leaseId, this.#clock.now())) this.#requireOpen(leaseId, "heartbeat");
    });
  }

  /** Reserves `additionalMs` more lifetime at the worst-case rate, re-checking every hard budget. */
  async extend(leaseId: string, additionalMs: number): Promise<LeaseInfo & { expiresAtMs: number }> {
    return this.#batched(() => {
      if (!Number.isInteger(additionalMs) || additionalMs <= 0) {
        throw new InvalidArgumentError(`extend needs a whole positive number of ms, got ${additionalMs}.`, [
          "additionalMs: must be a positive integer",
        ]);
      }
      return this.#ledger.immediate(() => {
        const lease = this.#requireOpen(leaseId, "extend");
        const extraNano = Math.ceil(((lease.worstCaseRateUsdPerSecond * additionalMs) / 1000) * 1e9);
        this.#reserveCounters(this.#bindingsOf(lease), extraNano, `Extending lease ${leaseId}`);
        this.#ledger.extend(leaseId, extraNano, additionalMs);
        const lifetimeMs = lease.lifetimeMs + additionalMs;
        return {
          leaseId,
          reservedUsd: fromNanoUsd(this.#ledger.reservedNanoUsd(leaseId)!),
          lifetimeMs,
          expiresAtMs: lease.createdAtMs + lifetimeMs,
        };
      });
    });
  }

  /**
   * Charges the lease (duration from reservation to `endedAtMs` x its rate, or `costUsd`) and releases the
   * rest of the reservation, in one transaction. Settling twice charges once and returns the first settlement.
   * Concurrent calls are committed together (one transaction, one savepoint each).
   */
  async settle(leaseId: string, options: SettleOptions = {}): Promise<Settlement> {
    return this.#batched((after) => this.#settle(leaseId, options, after));
  }

  /** Synchronous form of {@link CostGuard.settle} (one transaction per call). */
  settleSync(leaseId: string, options: SettleOptions = {}): Settlement {
    return this.#now((after) => this.#settle(leaseId, options, after));
  }

  /**
   * Settles an open lease (`reserved` or `active`) whose sandbox is gone, e.g. one that vanished while the
   * host was down: call it at start for leases the host cannot re-attach, or when a session is deleted.
   * Charges from the reservation to `endedAtMs` (clamped to [reserved at, now]; default the latest the
   * sandbox can have run: `min(now, reserved at + lifetimeMs)`) at the lease's rate, or `costUsd`, and
   * releases the rest. Idempotent like {@link CostGuard.settle}: a settled lease returns its first settlement
   * with `alreadySettled: true`. NOT_FOUND for an unknown id. Never blocks the event loop.
   *
   * @example
   * ```ts
   * for (const lease of guard.openLeases()) {
   *   if (!(await backend.isAlive(lease.sandboxId))) await guard.settleOrphan(lease.leaseId, { endedAtMs: lease.heartbeatAtMs });
   * }
   * ```
   */
  async settleOrphan(leaseId: string, options: OrphanSettleOptions = {}): Promise<Settlement> {
    return this.#batched((after) => this.#settleOrphan(leaseId, options, after));
  }

  /**
   * {@link CostGuard.settleOrphan} for every open lease matching `filter` (every given field must match;
   * at least one is required), in one transaction; e.g. `settleOrphans({ sessionId })` when a session is
   * deleted. Returns the settlements (empty when none matched), oldest lease first.
   */
  async settleOrphans(filter: OrphanFilter, options: OrphanSettleOptions = {}): Promise<Settlement[]> {
    const fields = (["sessionId", "userId", "provider", "sandboxId"] as const).filter(
      (k) => filter[k] !== undefined,
    );
    if (fields.length === 0) {
      return Promise.reject(
        new InvalidArgumentError(
          "settleOrphans needs at least one of sessionId, userId, provider or sandboxId (it would settle every open lease).",
          ["filter: empty"],
        ),
      );
    }
    return this.#batched((after) =>
      this.#ledger.immediate(() =>
        this.#ledger
          .openLeases()
          .filter(
            (l) =>
              (filter.sessionId === undefined || l.scope.sessionId === filter.sessionId) &&
              (filter.userId === undefined || l.scope.userId === filter.userId) &&
              (filter.provider === undefined || l.provider === filter.provider) &&
              (filter.sandboxId === undefined || l.sandboxId === filter.sandboxId),
          )
          .map((l) => this.#settleOrphan(l.leaseId, options, after)),
      ),
    );
  }

  #settleOrphan(leaseId: string, options: OrphanSettleOptions, after: AfterCommit): Settlement {
    const lease = this.#ledger.getLease(leaseId);
    const reason = options.reason ?? "orphan: sandbox gone";
    if (!lease || lease.status === "settled") return this.#settle(leaseId, { reason }, after);
    const now = this.#clock.now();
    const latest = Math.min(now, lease.createdAtMs + lease.lifetimeMs);
    const endedAtMs = Math.min(now, Math.max(lease.createdAtMs, options.endedAtMs ?? latest));
    return this.#settle(
      leaseId,
      { reason, endedAtMs, ...(options.costUsd !== undefined ? { costUsd: options.costUsd } : {}) },
      after,
    );
  }

  /**
   * Whether a reservation with this request would fit every budget now, without reserving anything: the
   * numbers of each budget that applies, and `exceeded` with what BUDGET_EXCEEDED would carry. A read (never
   * waits for another process's lock). `reserve` stays the authority: another reservation can take the room
   * between a check and a reserve. Rate limits (`maxReservationsPerMinute`) are not checked.
   * INVALID_ARGUMENT for a malformed request.
   */
  checkBudget(request: ReserveRequest): BudgetCheck {
    const req = parseOrThrow(ReserveRequestSchema, request, "reservation request");
    const estimate = estimateParsed(req.spec, req.lifetimeMs, this.prices);
    const { day, month } = this.#periods(this.#clock.now());
    const requestedNano = Math.ceil(estimate.worstCaseUsd * 1e9);
    const budgets: BudgetCheckRow[] = [];
    let exceeded: BudgetExceededDetails | undefined;
    this.#guarded(() => {
      for (const b of bindBudgets(this.budgets, req.scope, day, month)) {
        const c = this.#ledger.getCounter(b.scopeKey, b.periodKey);
        const limitNano = toNanoUsd(b.budget.limitUsd);
        const over = c.spentNanoUsd + c.reservedNanoUsd + requestedNano > limitNano;
        const row: BudgetCheckRow = {
          budget: b.budget.name,
          scopeKey: b.scopeKey,
          periodKey: b.periodKey,
          enforcement: b.budget.enforcement,
          limitUsd: b.budget.limitUsd,
          spentUsd: fromNanoUsd(c.spentNanoUsd),
          reservedUsd: fromNanoUsd(c.reservedNanoUsd),
          requestedUsd: fromNanoUsd(requestedNano),
          remainingUsd: fromNanoUsd(limitNano - c.spentNanoUsd - c.reservedNanoUsd),
          fits: b.budget.enforcement === "warn" || !over,
        };
        budgets.push(row);
        if (!row.fits && exceeded === undefined) {
          const { fits: _f, remainingUsd: _r, enforcement: _e, ...details } = row;
          exceeded = details;
        }
      }
    });
    return {
      fits: exceeded === undefined,
      requestedUsd: fromNanoUsd(requestedNano),
      estimate,
      budgets,
      ...(exceeded ? { exceeded } : {}),
    };
  }

  #settle(leaseId: string, options: SettleOptions, after: AfterCommit): Settlement {
    if (options.costUsd !== undefined && !(options.costUsd >= 0 && Number.isFinite(options.costUsd))) {
      throw new InvalidArgumentError(`settle costUsd must be a finite number >= 0, got ${options.costUsd}.`, [
        "costUsd: invalid",
      ]);
    }
    const now = this.#clock.now();
    const reason = options.reason ?? "closed";
    const costNano = options.costUsd === undefined ? undefined : toNanoUsd(options.costUsd);
    return this.#ledger.immediate((): Settlement => {
      const settled = this.#ledger.settle(leaseId, now, options.endedAtMs ?? now, costNano, reason);
      if (!settled) {
        const lease = this.#ledger.getLease(leaseId);
        if (!lease) {
          throw new RuntimeError(
            "NOT_FOUND",
            `No lease ${leaseId} in ledger ${this.options.ledgerPath}: nothing to settle.`,
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
      const warnings: Extract<CostEvent, { type: "warning" }>[] = [];
      const charged = settled.chargedNanoUsd;
      for (const group of groupByCounter(this.#bindingsOf(settled))) {
        const totals = this.#ledger.addCounter(
          group.scopeKey,
          group.periodKey,
          charged,
          -settled.reservedNanoUsd,
        );
        for (const binding of group.bindings) {
          warnings.push(...this.#crossed(binding, totals.spentNanoUsd - charged, totals.spentNanoUsd, now));
        }
      }
      after.push(() => {
        this.#hooks.delete(leaseId);
        this.#unstoppable.delete(leaseId);
        for (const w of warnings) this.#emitWarning(w);
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

  /** Inside a transaction: thresholds of a binding crossed between two spend levels, recorded once each. */
  #crossed(
    b: BudgetBinding,
    beforeNano: number,
    afterNano: number,
    now: number,
  ): Extract<CostEvent, { type: "warning" }>[] {
    const out: Extract<CostEvent, { type: "warning" }>[] = [];
    const limitNano = toNanoUsd(b.budget.limitUsd);
    for (const percent of b.budget.warnAtPercent) {
      const at = (limitNano * percent) / 100;
      if (afterNano >= at && beforeNano < at) {
        if (this.#ledger.warnOnce(b.budget.name, b.scopeKey, b.periodKey, percent, now)) {
          out.push({
            type: "warning",
            budget: b.budget.name,
            scopeKey: b.scopeKey,
            periodKey: b.periodKey,
            percent,
            spentUsd: fromNanoUsd(afterNano),
            limitUsd: b.budget.limitUsd,
          });
        }
      }
    }
    return out;
  }

  #emitWarning(w: Extract<CostEvent, { type: "warning" }>): void {
    this.#logger.warn(
      `Budget "${w.budget}" (${bindingLabel(w)}) reached ${w.percent}%: spent ${formatUsd(w.spentUsd)} of ${formatUsd(w.limitUsd)}.`,
      { ...w },
    );
    this.#emit(w);
  }

  #emit(event: CostEvent): void {
    try {
      this.#onEvent?.(event);
    } catch (err) {
      this.#logger.error("cost-guard onEvent listener threw", { error: (err as Error).message });
    }
  }

  /** Registers what to call when a budget or the idle reaper stops the lease's sandbox. Returns an unregister function. */
  onTerminate(leaseId: string, terminate: (reason: string) => Promise<void>): () => void {
    const set = this.#hooks.get(leaseId) ?? new Set<TerminateHook>();
    this.#hooks.set(leaseId, set);
    set.add(terminate);
    return () => {
      const current = this.#hooks.get(leaseId);
      current?.delete(terminate);
      if (current?.size === 0) this.#hooks.delete(leaseId);
    };
  }

  /** A lease by id, or undefined. */
  getLease(leaseId: string): LeaseRecord | undefined {
    return this.#guarded(() => this.#ledger.getLease(leaseId));
  }

  /** Every lease not yet settled, oldest first. */
  openLeases(): LeaseRecord[] {
    return this.#guarded(() => this.#ledger.openLeases());
  }

  /** What an open lease has cost so far at its charge rate, in USD (its charge if settled). */
  accruedUsd(lease: LeaseRecord, atMs = this.#clock.now()): number {
    if (lease.status === "settled") return lease.chargedUsd ?? 0;
    return (lease.chargeRateUsdPerSecond * Math.max(0, atMs - lease.createdAtMs)) / 1000;
  }

  /**
   * One enforcement pass (also run every `enforceIntervalMs`): the idle reaper, leases past their reserved
   * lifetime, `terminate` budgets that running leases would cross before they end, and soft thresholds of
   * spend (settled + accrued). Passes never overlap.
   */
  async enforce(): Promise<EnforcementReport> {
    if (this.#enforcing) return this.#enforcing;
    this.#enforcing = this.#enforce().finally(() => {
      this.#enforcing = undefined;
    });
    return this.#enforcing;
  }

  async #enforce(): Promise<EnforcementReport> {
    const now = this.#clock.now();
    const report: EnforcementReport = { atMs: now, reaped: [], terminated: [], warnings: [], overruns: [] };
    let open = this.openLeases();

    const idleMs = this.options.idleTimeoutMs;
    if (idleMs !== undefined) {
      for (const lease of open) {
        const quietMs = now - lease.heartbeatAtMs;
        if (quietMs <= idleMs) continue;
        const reason = `idle: no heartbeat for ${quietMs} ms (idleTimeoutMs ${idleMs})`;
        const terminated = await this.#stop(lease, reason, "idle");
        report.reaped.push({ leaseId: lease.leaseId, reason, terminated });
      }
      const reaped = new Set(report.reaped.map((r) => r.leaseId));
      open = open.filter((l) => !reaped.has(l.leaseId));
    }

    for (const lease of open) {
      const overrunMs = now - (lease.createdAtMs + lease.lifetimeMs);
      if (overrunMs <= 0) continue;
      report.overruns.push({ leaseId: lease.leaseId, overrunMs });
      if (!this.#reportedOverruns.has(lease.leaseId)) {
        this.#reportedOverruns.add(lease.leaseId);
        this.#logger.warn(
          `Lease ${lease.leaseId} is running past its reserved lifetime; extend it or stop the sandbox.`,
          {
            leaseId: lease.leaseId,
            overrunMs,
          },
        );
        this.#emit({ type: "overrun", leaseId: lease.leaseId, overrunMs });
      }
    }

    const groups = new Map<string, { binding: BudgetBinding; leases: LeaseRecord[] }>();
    for (const lease of open) {
      for (const binding of this.#bindingsOf(lease)) {
        const key = `${binding.budget.name}\u0000${binding.scopeKey}\u0000${binding.periodKey}`;
        const group = groups.get(key) ?? { binding, leases: [] };
        groups.set(key, group);
        group.leases.push(lease);
      }
    }

    const stopped = new Set<string>();
    for (const { binding, leases } of groups.values()) {
      if (binding.budget.enforcement !== "terminate") continue;
      const limitNano = toNanoUsd(binding.budget.limitUsd);
      const { spentNanoUsd } = this.#guarded(() =>
        this.#ledger.getCounter(binding.scopeKey, binding.periodKey),
      );
      // A running lease may cost up to its reservation, or more once it outlives it: project one interval ahead.
      const horizonMs = this.options.enforceIntervalMs;
      const projected = (l: LeaseRecord): number =>
        Math.max(
          toNanoUsd(l.reservedUsd),
          toNanoUsd((l.worstCaseRateUsdPerSecond * (now - l.createdAtMs + horizonMs)) / 1000),
        );
      let total = spentNanoUsd + leases.reduce((sum, l) => sum + projected(l), 0);
      if (total <= limitNano) continue;
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
        total -= projected(lease) - toNanoUsd(this.accruedUsd(lease, now));
      }
    }

    for (const { binding, leases } of groups.values()) {
      const { spentNanoUsd } = this.#guarded(() =>
        this.#ledger.getCounter(binding.scopeKey, binding.periodKey),
      );
      const live = leases.filter((l) => !stopped.has(l.leaseId));
      const accrued = live.reduce((sum, l) => sum + toNanoUsd(this.accruedUsd(l, now)), 0);
      const crossed = await this.#batched(() =>
        this.#ledger.immediate(() => this.#crossed(binding, 0, spentNanoUsd + accrued, now)),
      );
      for (const w of crossed) {
        this.#emitWarning(w);
        report.warnings.push(w);
      }
    }
    return report;
  }

  /** Stops a lease's sandbox through its hooks (or the inventory) and settles it. Returns whether it was stopped. */
  async #stop(lease: LeaseRecord, reason: string, cause: "idle" | "budget"): Promise<boolean> {
    const hooks = [...(this.#hooks.get(lease.leaseId) ?? [])];
    let terminated = false;
    if (hooks.length > 0) {
      for (const hook of hooks) {
        try {
          await hook(reason);
          terminated = true;
        } catch (err) {
          this.#logger.error(`Terminate hook of lease ${lease.leaseId} failed`, {
            leaseId: lease.leaseId,
            error: (err as Error).message,
          });
        }
      }
    } else if (this.#inventory && lease.sandboxId && lease.provider === this.#inventory.provider) {
      try {
        await this.#inventory.terminate(lease.sandboxId);
        terminated = true;
      } catch (err) {
        this.#logger.error(`Terminating sandbox ${lease.sandboxId} of lease ${lease.leaseId} failed`, {
          leaseId: lease.leaseId,
          sandboxId: lease.sandboxId,
          error: (err as Error).message,
        });
      }
    }
    // An idle lease is settled even when its sandbox could not be stopped: its holder is gone, and the orphan
    // sweeper terminates a sandbox whose lease is settled. A budget stop without a stop keeps the lease open.
    if (terminated || cause === "idle") await this.settle(lease.leaseId, { reason: `${cause}: ${reason}` });
    else if (this.#unstoppable.has(lease.leaseId))
      return false; // reported on an earlier pass
    else this.#unstoppable.add(lease.leaseId);
    this.#logger.warn(
      terminated
        ? `Stopped lease ${lease.leaseId}: ${reason}`
        : `Cannot stop the sandbox of lease ${lease.leaseId} (${reason}): no terminate hook is registered in this ` +
            `process and no inventory can reach it.`,
      { leaseId: lease.leaseId, cause },
    );
    this.#emit({
      type: "terminate",
      leaseId: lease.leaseId,
      ...(lease.sandboxId ? { sandboxId: lease.sandboxId } : {}),
      cause,
      reason,
      terminated,
    });
    return terminated;
  }

  /**
   * Reconciles this ledger's leases with a backend's sandboxes listed by {@link LEASE_TAG_KEY}: a lease
   * without a sandbox is settled; a sandbox without an open lease is terminated and reported; a sandbox
   * found for a never-activated lease is adopted. Sandboxes tagged by another ledger are left alone.
   */
  async sweepOrphans(inventory: SandboxInventory, options: SweepOptions = {}): Promise<SweepReport> {
    const graceMs = options.graceMs ?? this.options.sweepGraceMs;
    const sandboxes = await inventory.listByTag(LEASE_TAG_KEY);
    const now = this.#clock.now();
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
      if (!leaseId?.startsWith(this.#leasePrefix)) {
        report.foreign.push(sandbox.sandboxId);
        continue;
      }
      const lease = this.getLease(leaseId);
      let reason: string;
      if (!lease) reason = "no lease with this id in the ledger";
      else if (lease.status === "settled")
        reason = `its lease was settled (${lease.settleReason ?? "closed"})`;
      else if (lease.sandboxId !== undefined && lease.sandboxId !== sandbox.sandboxId)
        reason = `its lease is active on sandbox ${lease.sandboxId}`;
      else {
        covered.add(leaseId);
        if (lease.sandboxId === undefined) {
          await this.activate(leaseId, sandbox.sandboxId);
          report.adopted.push({ sandboxId: sandbox.sandboxId, leaseId });
        }
        continue;
      }
      try {
        await inventory.terminate(sandbox.sandboxId);
        report.terminated.push({ sandboxId: sandbox.sandboxId, leaseId, reason });
        this.#logger.warn(`Terminated orphan sandbox ${sandbox.sandboxId}: ${reason}`, {
          sandboxId: sandbox.sandboxId,
          leaseId,
        });
        this.#emit({ type: "orphan", sandboxId: sandbox.sandboxId, leaseId, reason });
      } catch (err) {
        report.errors.push({
          sandboxId: sandbox.sandboxId,
          message: toCostError(err, this.options.ledgerPath).message,
        });
      }
    }
    for (const lease of this.openLeases()) {
      if (lease.provider !== inventory.provider || covered.has(lease.leaseId)) continue;
      if (now - lease.createdAtMs < graceMs) continue;
      // The sandbox is gone and we do not know when it stopped; the provider ends it at its lifetime at the latest.
      const s = await this.settle(lease.leaseId, {
        reason: "orphan sweep: no sandbox carries this lease",
        endedAtMs: Math.min(now, lease.createdAtMs + lease.lifetimeMs),
      });
      if (!s.alreadySettled)
        report.settled.push({ leaseId: s.leaseId, chargedUsd: s.chargedUsd, durationMs: s.durationMs });
    }
    return report;
  }

  /** Limits, spent, reserved and remaining of every budget in the current UTC period. */
  budgetStatus(): BudgetStatusRow[] {
    return this.#guarded(() => budgetStatus(this.#ledger, this.budgets, this.#clock.now()));
  }

  /** Settled spend grouped by user, session, day, month, GPU or provider. */
  report(query: ReportQuery): ReportRow[] {
    return this.#guarded(() => buildReport(this.#ledger, query));
  }

  /** Stops the enforcement timer and closes the ledger. Idempotent. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#hooks.clear();
    this.#ledger.close();
    // Operations still waiting for a locked ledger fail now rather than at their deadline.
    const closed = new RuntimeError("FAILED_PRECONDITION", "This cost guard is closed; create a new one.");
    for (const item of this.#queue.splice(0)) item.reject(closed);
    this.#flushScheduled = false;
  }

  /**
   * Runs one operation now, then its after-commit effects. Operations make their writes atomic themselves
   * (one statement, or their own `immediate`), so they work alone and inside a group commit alike.
   */
  #now<T>(op: (after: AfterCommit) => T): T {
    try {
      return this.#nowOnce(op);
    } catch (err) {
      if (!isBusyError(err) || this.options.busyTimeoutMs === 0 || !this.#ledger.db.open) throw err;
      // A sync caller cannot be answered later: wait for the lock the only way a sync call can, blocking.
      this.#ledger.setBusyTimeout(this.options.busyTimeoutMs);
      try {
        return this.#nowOnce(op);
      } finally {
        if (this.#ledger.db.open) this.#ledger.setBusyTimeout(0);
      }
    }
  }

  #nowOnce<T>(op: (after: AfterCommit) => T): T {
    const after: AfterCommit = [];
    const value = this.#guarded(() => op(after));
    for (const effect of after) effect();
    return value;
  }

  /**
   * Queues an operation for the next group commit: every operation queued before the batch runs shares one
   * `BEGIN IMMEDIATE` transaction, each in its own savepoint (so one refusal does not undo the others), and
   * its promise settles only after the commit, so a resolved settle is durable.
   */
  #batched<T>(op: (after: AfterCommit) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = performance.now() + this.options.busyTimeoutMs;
      this.#queue.push({ op, resolve: resolve as (value: unknown) => void, reject, deadline });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /**
   * Commits the queued operations. When another process holds the ledger's write lock, `BEGIN IMMEDIATE`
   * fails at once (busy timeout 0) and the batch is retried on a timer with backoff, so the event loop keeps
   * running; operations past their deadline (`busyTimeoutMs` after they were queued) fail with UNAVAILABLE.
   */
  #flush(): void {
    this.#flushScheduled = false;
    this.#retryTimer = undefined;
    const batch = this.#queue.splice(0);
    if (batch.length === 0) return;
    const after: AfterCommit = [];
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.#guarded(() =>
        this.#ledger.immediate(() => {
          for (const item of batch) {
            const own: AfterCommit = [];
            try {
              // Every operation writes inside its own `immediate`, which nested in the batch is a savepoint.
              outcomes.push({ ok: true, value: item.op(own) });
              after.push(...own);
            } catch (error) {
              outcomes.push({ ok: false, error });
            }
          }
        }),
      );
    } catch (error) {
      if (isBusyError(error) && this.#ledger.db.open) {
        this.#retryLocked(batch, error);
        return;
      }
      for (const item of batch) item.reject(toCostError(error, this.options.ledgerPath));
      return;
    }
    this.#busyRetries = 0;
    for (const effect of after) effect();
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(toCostError(outcome.error, this.options.ledgerPath));
    });
  }

  #retryLocked(batch: QueuedOp[], error: unknown): void {
    const now = performance.now();
    const waiting = batch.filter((item) => item.deadline > now);
    for (const item of batch) {
      if (item.deadline > now) continue;
      item.reject(
        new RuntimeError(
          "UNAVAILABLE",
          `The ledger ${this.options.ledgerPath} stayed locked by another process for busyTimeoutMs ` +
            `(${this.options.busyTimeoutMs} ms); nothing was written. Retry, raise busyTimeoutMs, or find the ` +
            "process that holds the ledger's write lock.",
          { cause: error, details: { reason: "locked", busyTimeoutMs: this.options.busyTimeoutMs } },
        ),
      );
    }
    if (waiting.length === 0) {
      this.#busyRetries = 0;
      return;
    }
    this.#queue.unshift(...waiting);
    const backoff = Math.min(50, 2 * 2 ** this.#busyRetries) * (0.5 + Math.random() / 2);
    this.#busyRetries++;
    const nextDeadline = Math.min(...waiting.map((item) => item.deadline));
    this.#scheduleFlush(Math.max(1, Math.min(backoff, nextDeadline - now)));
  }

  #scheduleFlush(delayMs: number): void {
    this.#flushScheduled = true;
    this.#retryTimer = setTimeout(() => this.#flush(), delayMs);
  }

  #guarded<T>(fn: () => T): T {
    if (!this.#ledger.db.open) {
      throw new RuntimeError("FAILED_PRECONDITION", "This cost guard is closed; create a new one.");
    }
    try {
      return fn();
    } catch (err) {
      throw toCostError(err, this.options.ledgerPath);
    }
  }
}

/** Bindings grouped by the counter (scope key + period key) they share. */
function groupByCounter(
  bindings: readonly BudgetBinding[],
): { scopeKey: string; periodKey: string; bindings: BudgetBinding[] }[] {
  const groups = new Map<string, { scopeKey: string; periodKey: string; bindings: BudgetBinding[] }>();
  for (const b of bindings) {
    const key = `${b.scopeKey}\u0000${b.periodKey}`;
    const group = groups.get(key) ?? { scopeKey: b.scopeKey, periodKey: b.periodKey, bindings: [] };
    groups.set(key, group);
    group.bindings.push(b);
  }
  return [...groups.values()];
}
