import type { CostPlugin, CostScope, LeaseInfo, Logger, SandboxInventory } from "@agent-runtime/runtime-core";
import { LEASE_TAG_KEY, quietLogger } from "@agent-runtime/runtime-core";
import type { ResolvedBudget } from "./budgets.js";
import { type Clock, systemClock } from "./clock.js";
import { syncBudgets, UtcPeriodCache } from "./counters.js";
import { type EnforcementReport, Enforcer, ReservationRateLimit } from "./enforcement.js";
import { toCostError } from "./errors.js";
import { type CostEstimate, type CostSpec, estimateCost } from "./estimate.js";
import { type CostEvent, CostEvents } from "./events.js";
import { GroupCommit } from "./group-commit.js";
import { type BudgetCheck, type Lease, LeaseBook, type ReserveRequest } from "./leases.js";
import { type LeaseRecord, Ledger } from "./ledger.js";
import type { ResolvedCostGuardOptions } from "./options.js";
import { loadPriceTableFile, type PriceTable, resolvePriceTable } from "./prices.js";
import {
  type BudgetStatusRow,
  budgetStatus,
  buildReport,
  type ReportQuery,
  type ReportRow,
} from "./report.js";
import {
  assertOrphanFilter,
  type OrphanFilter,
  type OrphanSettleOptions,
  type Settlement,
  type SettleOptions,
  Settler,
} from "./settlement.js";
import { type SweepOptions, type SweepReport, sweepOrphans } from "./sweeper.js";

export type { BudgetCheckRow } from "./counters.js";
export type { EnforcementReport } from "./enforcement.js";
export type { CostEvent } from "./events.js";
export type { BudgetCheck, Lease, ReserveRequest } from "./leases.js";
export type { OrphanFilter, OrphanSettleOptions, Settlement, SettleOptions } from "./settlement.js";

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

/**
 * Budgets that stop runaway spend before it happens: implements runtime-core's {@link CostPlugin}.
 * A runtime calls `reserve` before it creates a sandbox (the worst case is written to the ledger atomically,
 * or BUDGET_EXCEEDED is thrown), `activate` with the sandbox id, `heartbeat` while it is used, `rescope`
 * when a pooled sandbox is handed out, and `settle` at close. Create it with `costGuard()` or the
 * `cost-guard` plugin.
 *
 * This class is the facade: leases are opened in `leases.ts` and closed in `settlement.ts`, budgets are
 * counted in `counters.ts`, running leases enforced in `enforcement.ts`, orphans swept in `sweeper.ts`, and
 * every write goes through the group commit of `group-commit.ts`.
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
export class CostGuard implements CostPlugin {
  /** The tag key under which sandboxes carry their lease id. */
  static readonly LEASE_TAG_KEY = LEASE_TAG_KEY;
  readonly options: ResolvedCostGuardOptions;
  /** The resolved price table. */
  readonly prices: PriceTable;
  readonly budgets: readonly ResolvedBudget[];
  readonly #ledger: Ledger;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #events: CostEvents;
  readonly #commit: GroupCommit;
  readonly #leases: LeaseBook;
  readonly #settler: Settler;
  readonly #enforcer: Enforcer;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ResolvedCostGuardOptions, services: CostGuardServices = {}) {
    this.options = options;
    this.#clock = services.clock ?? systemClock;
    this.#logger = services.logger ?? quietLogger;
    this.#events = new CostEvents(this.#logger, services.onEvent);
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
    try {
      syncBudgets(this.#ledger, this.budgets, this.prices);
      // From here on a locked ledger fails a statement at once; the async methods retry without blocking.
      this.#ledger.setBusyTimeout(0);
    } catch (err) {
      this.#ledger.close();
      throw toCostError(err, options.ledgerPath);
    }
    const ledger = this.#ledger;
    const clock = this.#clock;
    const events = this.#events;
    this.#commit = new GroupCommit(ledger, options);
    const rateLimit = new ReservationRateLimit(options.maxReservationsPerMinute);
    this.#leases = new LeaseBook({
      ledger,
      clock,
      options,
      prices: this.prices,
      budgets: this.budgets,
      periods: new UtcPeriodCache(),
      checkRate: (now) => rateLimit.check(now),
      recordReservation: (now) => rateLimit.record(now),
    });
    this.#enforcer = new Enforcer({
      ledger,
      commit: this.#commit,
      clock,
      logger: this.#logger,
      events,
      options,
      budgets: this.budgets,
      inventory: services.inventory,
      settle: (leaseId, o) => this.settle(leaseId, o),
      accruedUsd: (lease, atMs) => this.accruedUsd(lease, atMs),
    });
    const enforcer = this.#enforcer;
    this.#settler = new Settler({
      ledger,
      clock,
      ledgerPath: options.ledgerPath,
      budgets: this.budgets,
      events,
      onSettled: (leaseId) => enforcer.forget(leaseId),
    });
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
    return this.#commit.batched(() => this.#leases.reserve(request));
  }

  /** Synchronous form of {@link CostGuard.reserve} (one transaction per call). */
  reserveSync(request: ReserveRequest): Lease {
    return this.#commit.now(() => this.#leases.reserve(request));
  }

  /** Records that the sandbox for a lease exists. Idempotent for the same sandbox id. */
  async activate(leaseId: string, sandboxId: string): Promise<void> {
    return this.#commit.batched(() => this.#leases.activate(leaseId, sandboxId));
  }

  /** Tells the reaper the lease's sandbox is in use. Throws FAILED_PRECONDITION once the lease is settled. */
  async heartbeat(leaseId: string): Promise<void> {
    return this.#commit.batched(() => this.#leases.heartbeat(leaseId));
  }

  /** Reserves `additionalMs` more lifetime at the worst-case rate, re-checking every hard budget. */
  async extend(leaseId: string, additionalMs: number): Promise<LeaseInfo & { expiresAtMs: number }> {
    return this.#commit.batched(() => this.#leases.extend(leaseId, additionalMs));
  }

  /**
   * Moves an open lease to another scope, e.g. a pooled sandbox handed out to a user's session: `scope`
   * replaces the lease's user, session and tags. Its reservation moves to the budgets of the new scope, which
   * are checked like a reservation: BUDGET_EXCEEDED (with the same `details` as `reserve`'s) leaves the lease
   * as it was. Later reports and budgets count the lease (all of it) under the new scope. Counts as a
   * heartbeat. FAILED_PRECONDITION for a settled lease, NOT_FOUND for an unknown one, INVALID_ARGUMENT for an
   * unknown scope key.
   *
   * @example
   * ```ts
   * const lease = await guard.reserve({ spec, scope: { sessionId: "pool" }, lifetimeMs }); // warm pool
   * await guard.rescope(lease.leaseId, { userId: "alice", sessionId: "s-42" }); // handed out
   * ```
   */
  async rescope(leaseId: string, scope: CostScope): Promise<void> {
    return this.#commit.batched(() => this.#leases.rescope(leaseId, scope));
  }

  /**
   * Charges the lease (duration from reservation to `endedAtMs` x its rate, or `costUsd`) and releases the
   * rest of the reservation, in one transaction. Settling twice charges once and returns the first settlement.
   * Concurrent calls are committed together (one transaction, one savepoint each).
   */
  async settle(leaseId: string, options: SettleOptions = {}): Promise<Settlement> {
    return this.#commit.batched((after) => this.#settler.settle(leaseId, options, after));
  }

  /** Synchronous form of {@link CostGuard.settle} (one transaction per call). */
  settleSync(leaseId: string, options: SettleOptions = {}): Settlement {
    return this.#commit.now((after) => this.#settler.settle(leaseId, options, after));
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
    return this.#commit.batched((after) => this.#settler.settleOrphan(leaseId, options, after));
  }

  /**
   * {@link CostGuard.settleOrphan} for every open lease matching `filter` (every given field must match;
   * at least one is required), in one transaction; e.g. `settleOrphans({ sessionId })` when a session is
   * deleted. Returns the settlements (empty when none matched), oldest lease first.
   */
  async settleOrphans(filter: OrphanFilter, options: OrphanSettleOptions = {}): Promise<Settlement[]> {
    assertOrphanFilter(filter);
    return this.#commit.batched((after) => this.#settler.settleOrphans(filter, options, after));
  }

  /**
   * Whether a reservation with this request would fit every budget now, without reserving anything: the
   * numbers of each budget that applies, and `exceeded` with what BUDGET_EXCEEDED would carry. A read (never
   * waits for another process's lock). `reserve` stays the authority: another reservation can take the room
   * between a check and a reserve. Rate limits (`maxReservationsPerMinute`) are not checked.
   * INVALID_ARGUMENT for a malformed request.
   */
  checkBudget(request: ReserveRequest): BudgetCheck {
    return this.#commit.guarded(() => this.#leases.checkBudget(request));
  }

  /** Registers what to call when a budget or the idle reaper stops the lease's sandbox. Returns an unregister function. */
  onTerminate(leaseId: string, terminate: (reason: string) => Promise<void>): () => void {
    return this.#enforcer.onTerminate(leaseId, terminate);
  }

  /** A lease by id, or undefined. */
  getLease(leaseId: string): LeaseRecord | undefined {
    return this.#commit.guarded(() => this.#ledger.getLease(leaseId));
  }

  /** Every lease not yet settled, oldest first. */
  openLeases(): LeaseRecord[] {
    return this.#commit.guarded(() => this.#ledger.openLeases());
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
    return this.#enforcer.enforce();
  }

  /**
   * Reconciles this ledger's leases with a backend's sandboxes listed by {@link LEASE_TAG_KEY}: a lease
   * without a sandbox is settled; a sandbox without an open lease is terminated and reported; a sandbox
   * found for a never-activated lease is adopted. Sandboxes tagged by another ledger are left alone.
   */
  async sweepOrphans(inventory: SandboxInventory, options: SweepOptions = {}): Promise<SweepReport> {
    return sweepOrphans(
      {
        clock: this.#clock,
        logger: this.#logger,
        events: this.#events,
        ledgerPath: this.options.ledgerPath,
        leasePrefix: this.#leases.leasePrefix,
        graceMs: this.options.sweepGraceMs,
        getLease: (leaseId) => this.getLease(leaseId),
        openLeases: () => this.openLeases(),
        activate: (leaseId, sandboxId) => this.activate(leaseId, sandboxId),
        settle: (leaseId, o) => this.settle(leaseId, o),
      },
      inventory,
      options,
    );
  }

  /** Limits, spent, reserved and remaining of every budget in the current UTC period. */
  budgetStatus(): BudgetStatusRow[] {
    return this.#commit.guarded(() => budgetStatus(this.#ledger, this.budgets, this.#clock.now()));
  }

  /** Settled spend grouped by user, session, day, month, GPU or provider. */
  report(query: ReportQuery): ReportRow[] {
    return this.#commit.guarded(() => buildReport(this.#ledger, query));
  }

  /** Stops the enforcement timer and closes the ledger. Idempotent. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#enforcer.clear();
    this.#ledger.close();
    this.#commit.close();
  }
}
