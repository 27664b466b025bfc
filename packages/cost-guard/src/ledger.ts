/**
 * The ledger's statements: leases, counters and warnings. Its schema and file handling live in
 * ledger-schema.ts, row mapping in ledger-records.ts, aggregate SQL in ledger-aggregates.ts.
 */
import type { CostScope } from "@agent-runtime/runtime-core";
import type { Database } from "@agent-runtime/sqlite";
import type { BudgetPeriod, BudgetScope } from "./budgets.js";
import { toCostError } from "./errors.js";
import { aggregateLeases, type LeaseAggregate } from "./ledger-aggregates.js";
import {
  type CounterTotals,
  type LeaseRecord,
  type LeaseRow,
  type NewLease,
  type SettledLease,
  type SettledRow,
  scopeColumns,
  scopeOf,
  toRecord,
} from "./ledger-records.js";
import { type LedgerOpenOptions, openLedgerDatabase } from "./ledger-schema.js";

export { type LeaseAggregate, periodSql, scopeSql } from "./ledger-aggregates.js";
export {
  type CounterTotals,
  fromNanoUsd,
  type LeaseRecord,
  type LeaseStatus,
  type NewLease,
  type SettledLease,
  toNanoUsd,
} from "./ledger-records.js";
export {
  LEDGER_DIR_MODE,
  LEDGER_FILE_MODE,
  LEDGER_SCHEMA_VERSION,
  type LedgerOpenOptions,
} from "./ledger-schema.js";

/**
 * The SQLite ledger: leases, running counters per budget scope and period, and fired warnings, in WAL mode.
 * Every method is synchronous; writes that must be atomic run inside {@link Ledger.immediate}, which takes
 * SQLite's write lock at `BEGIN` (`BEGIN IMMEDIATE`), so processes sharing the file serialize there.
 */
export class Ledger {
  /** The path given (or `:memory:`). */
  readonly path: string;
  /** Random id of this ledger, created with it; lease ids start with its first 8 characters. */
  readonly ledgerId: string;
  /** The underlying SQLite connection, node:sqlite or better-sqlite3 (for tests and tools; prefer the methods). */
  readonly db: Database;
  readonly #stmts: ReturnType<Ledger["prepareStatements"]>;

  constructor(options: LedgerOpenOptions) {
    this.path = options.path;
    const db = openLedgerDatabase(options);
    try {
      this.db = db;
      this.#stmts = this.prepareStatements();
      this.ledgerId = this.getMeta("ledger_id")!;
    } catch (err) {
      db.close();
      throw toCostError(err, options.path);
    }
  }

  private prepareStatements() {
    const db = this.db;
    return {
      getMeta: db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?"),
      setMeta: db.prepare(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ),
      insertLease: db.prepare(
        `INSERT INTO leases (lease_id, status, provider, spec_json, gpu_type, gpu_count, user_id, session_id, tags_json,
           charge_rate_usd_per_s, worst_rate_usd_per_s, reserved_nusd, lifetime_ms, created_at_ms, day, month,
           heartbeat_at_ms, price_version)
         VALUES (?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      getLease: db.prepare<[string], LeaseRow>("SELECT * FROM leases WHERE lease_id = ?"),
      openLeases: db.prepare<[], LeaseRow>(
        "SELECT * FROM leases WHERE status <> 'settled' ORDER BY created_at_ms, lease_id",
      ),
      activate: db.prepare(
        `UPDATE leases SET status = 'active', sandbox_id = ?, activated_at_ms = ?, heartbeat_at_ms = ?
         WHERE lease_id = ? AND status <> 'settled'`,
      ),
      heartbeat: db.prepare(
        "UPDATE leases SET heartbeat_at_ms = ? WHERE lease_id = ? AND status <> 'settled'",
      ),
      rescope: db.prepare(
        `UPDATE leases SET user_id = ?, session_id = ?, tags_json = ?, heartbeat_at_ms = max(heartbeat_at_ms, ?)
         WHERE lease_id = ? AND status <> 'settled'`,
      ),
      extend: db.prepare(
        `UPDATE leases SET reserved_nusd = reserved_nusd + ?, lifetime_ms = lifetime_ms + ?
         WHERE lease_id = ? AND status <> 'settled'`,
      ),
      getCounter: db.prepare<[string, string], { spent_nusd: number; reserved_nusd: number }>(
        "SELECT spent_nusd, reserved_nusd FROM counters WHERE scope_key = ? AND period_key = ?",
      ),
      addCounter: db.prepare<[string, string, number, number], { spent_nusd: number; reserved_nusd: number }>(
        `INSERT INTO counters (scope_key, period_key, spent_nusd, reserved_nusd) VALUES (?, ?, ?, ?)
         ON CONFLICT (scope_key, period_key) DO UPDATE SET spent_nusd = spent_nusd + excluded.spent_nusd,
           reserved_nusd = reserved_nusd + excluded.reserved_nusd
         RETURNING spent_nusd, reserved_nusd`,
      ),
      bumpCounter: db.prepare(
        `INSERT INTO counters (scope_key, period_key, spent_nusd, reserved_nusd) VALUES (?, ?, ?, ?)
         ON CONFLICT (scope_key, period_key) DO UPDATE SET spent_nusd = spent_nusd + excluded.spent_nusd,
           reserved_nusd = reserved_nusd + excluded.reserved_nusd`,
      ),
      reserveWithin: db.prepare<[string, string, number, number], { ok: number }>(
        `INSERT INTO counters (scope_key, period_key, spent_nusd, reserved_nusd) VALUES (?, ?, 0, ?)
         ON CONFLICT (scope_key, period_key) DO UPDATE SET reserved_nusd = reserved_nusd + excluded.reserved_nusd
           WHERE spent_nusd + reserved_nusd + excluded.reserved_nusd <= ?
         RETURNING 1 AS ok`,
      ),
      // Charge in nano-USD: rate (USD/s) x duration (ms) x 1e6, unless the caller gives the cost.
      settleReturning: db.prepare<[number, number | null, number, number, string, string], SettledRow>(
        `UPDATE leases SET status = 'settled', settled_at_ms = ?,
           charged_nusd = COALESCE(?, CAST(round(charge_rate_usd_per_s * max(0, ? - created_at_ms) * 1000000.0) AS INTEGER)),
           duration_ms = max(0, ? - created_at_ms), settle_reason = ?
         WHERE lease_id = ? AND status <> 'settled'
         RETURNING reserved_nusd, charged_nusd, duration_ms, user_id, session_id, tags_json, day, month`,
      ),
      warnOnce: db.prepare(
        "INSERT OR IGNORE INTO warnings (budget, scope_key, period_key, percent, at_ms) VALUES (?, ?, ?, ?, ?)",
      ),
    };
  }

  /**
   * Sets how long statements wait (blocking) for another process's lock, in ms; 0 makes a locked write fail
   * at once with SQLITE_BUSY (mapped to UNAVAILABLE), which {@link CostGuard} retries without blocking.
   */
  setBusyTimeout(ms: number): void {
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(ms))}`);
  }

  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction (a savepoint when nested); rolls back if it throws. */
  immediate<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn, "immediate");
    } catch (err) {
      throw toCostError(err, this.path);
    }
  }

  /** Reads a meta value. */
  getMeta(key: string): string | undefined {
    return this.#stmts.getMeta.get(key)?.value;
  }

  /** Writes a meta value. */
  setMeta(key: string, value: string): void {
    this.#stmts.setMeta.run(key, value);
  }

  /** Inserts a new lease with status `reserved`. */
  insertLease(l: NewLease): void {
    this.#stmts.insertLease.run(
      l.leaseId,
      l.provider,
      JSON.stringify(l.spec),
      l.gpuType ?? null,
      l.gpuCount,
      ...scopeColumns(l.scope),
      l.chargeRateUsdPerSecond,
      l.worstCaseRateUsdPerSecond,
      l.reservedNanoUsd,
      l.lifetimeMs,
      l.createdAtMs,
      l.day,
      l.month,
      l.createdAtMs,
      l.priceTableVersion,
    );
  }

  /** The lease with this id, or undefined. */
  getLease(leaseId: string): LeaseRecord | undefined {
    const row = this.#stmts.getLease.get(leaseId);
    return row ? toRecord(row) : undefined;
  }

  /** The stored reservation of a lease in nano-USD (exact), or undefined. */
  reservedNanoUsd(leaseId: string): number | undefined {
    return this.#stmts.getLease.get(leaseId)?.reserved_nusd;
  }

  /** Every lease that is not settled, oldest first. */
  openLeases(): LeaseRecord[] {
    return this.#stmts.openLeases.all().map(toRecord);
  }

  /** Marks a lease active on a sandbox. Returns false when the lease is missing or settled. */
  activate(leaseId: string, sandboxId: string, nowMs: number): boolean {
    return this.#stmts.activate.run(sandboxId, nowMs, nowMs, leaseId).changes === 1;
  }

  /** Records a heartbeat. Returns false when the lease is missing or settled. */
  heartbeat(leaseId: string, nowMs: number): boolean {
    return this.#stmts.heartbeat.run(nowMs, leaseId).changes === 1;
  }

  /**
   * Moves an open lease to another scope (user, session, tags: all three replaced) and counts the move as a
   * heartbeat. Returns false when the lease is missing or settled. Counters are the caller's to move.
   */
  rescope(leaseId: string, scope: CostScope, nowMs: number): boolean {
    return this.#stmts.rescope.run(...scopeColumns(scope), nowMs, leaseId).changes === 1;
  }

  /** Grows an open lease's reservation and lifetime. Returns false when the lease is missing or settled. */
  extend(leaseId: string, extraNanoUsd: number, extraMs: number): boolean {
    return this.#stmts.extend.run(extraNanoUsd, extraMs, leaseId).changes === 1;
  }

  /** Totals of one counter (zeros when it does not exist yet). */
  getCounter(scopeKey: string, periodKey: string): CounterTotals {
    const row = this.#stmts.getCounter.get(scopeKey, periodKey);
    return { spentNanoUsd: row?.spent_nusd ?? 0, reservedNanoUsd: row?.reserved_nusd ?? 0 };
  }

  /** Adds to one counter and returns its new totals. */
  addCounter(
    scopeKey: string,
    periodKey: string,
    spentNanoUsd: number,
    reservedNanoUsd: number,
  ): CounterTotals {
    const row = this.#stmts.addCounter.get(scopeKey, periodKey, spentNanoUsd, reservedNanoUsd)!;
    return { spentNanoUsd: row.spent_nusd, reservedNanoUsd: row.reserved_nusd };
  }

  /** Adds to one counter without reading it back. */
  bumpCounter(scopeKey: string, periodKey: string, spentNanoUsd: number, reservedNanoUsd: number): void {
    this.#stmts.bumpCounter.run(scopeKey, periodKey, spentNanoUsd, reservedNanoUsd);
  }

  /**
   * Adds `reservedNanoUsd` to a counter only if `spent + reserved + reservedNanoUsd <= limitNanoUsd` afterwards
   * (a new counter is always created: check `reservedNanoUsd <= limitNanoUsd` first). True when added.
   */
  reserveWithin(scopeKey: string, periodKey: string, reservedNanoUsd: number, limitNanoUsd: number): boolean {
    return this.#stmts.reserveWithin.get(scopeKey, periodKey, reservedNanoUsd, limitNanoUsd) !== undefined;
  }

  /**
   * Settles an open lease in one statement: charges `costNanoUsd`, or its charge rate x (endedAt - reserved
   * at), and returns what the counters need; undefined when the lease is missing or already settled.
   */
  settle(
    leaseId: string,
    settledAtMs: number,
    endedAtMs: number,
    costNanoUsd: number | undefined,
    reason: string,
  ): SettledLease | undefined {
    const row = this.#stmts.settleReturning.get(
      settledAtMs,
      costNanoUsd ?? null,
      endedAtMs,
      endedAtMs,
      reason,
      leaseId,
    );
    if (!row) return undefined;
    return {
      reservedNanoUsd: row.reserved_nusd,
      chargedNanoUsd: row.charged_nusd,
      durationMs: row.duration_ms,
      scope: scopeOf(row),
      day: row.day,
      month: row.month,
    };
  }

  /** Records that a warning fired; true the first time for this budget, scope, period and percent. */
  warnOnce(budget: string, scopeKey: string, periodKey: string, percent: number, atMs: number): boolean {
    return this.#stmts.warnOnce.run(budget, scopeKey, periodKey, percent, atMs).changes === 1;
  }

  /**
   * Spent (settled) and reserved (open) totals per scope key and period key for a budget shape, computed
   * from the leases themselves; optionally only for one period key.
   */
  aggregate(scope: BudgetScope, period: BudgetPeriod, onlyPeriodKey?: string): LeaseAggregate[] {
    return aggregateLeases(this.db, scope, period, onlyPeriodKey);
  }

  /**
   * Recomputes every counter from the leases for the given budget shapes (used when the set of budget
   * scopes and periods changes). Runs in one immediate transaction.
   */
  rebuildCounters(shapes: readonly { scope: BudgetScope; period: BudgetPeriod }[]): void {
    this.immediate(() => {
      this.db.exec("DELETE FROM counters");
      const insert = this.db.prepare(
        "INSERT OR IGNORE INTO counters (scope_key, period_key, spent_nusd, reserved_nusd) VALUES (?, ?, ?, ?)",
      );
      for (const shape of shapes) {
        for (const row of this.aggregate(shape.scope, shape.period)) {
          insert.run(row.scopeKey, row.periodKey, row.spentNanoUsd, row.reservedNanoUsd);
        }
      }
    });
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
