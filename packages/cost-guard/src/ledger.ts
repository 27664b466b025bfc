import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { CostScope } from "@agent-runtime/runtime-core";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { type Database, open, type SqliteDriverChoice } from "@agent-runtime/sqlite";
import type { BudgetPeriod, BudgetScope } from "./budgets.js";
import { toCostError } from "./errors.js";
import type { CostSpec } from "./estimate.js";

/** Version of the ledger's SQLite schema; a ledger written by a newer version is refused. */
export const LEDGER_SCHEMA_VERSION = 1;

/** USD to integer nano-dollars, the unit the ledger stores so that sums are exact. */
export function toNanoUsd(usd: number): number {
  return Math.round(usd * 1e9);
}
/** Integer nano-dollars to USD. */
export function fromNanoUsd(nanoUsd: number): number {
  return nanoUsd / 1e9;
}

/** Lifecycle of a lease: reserved before create, active once the sandbox exists, settled at the end. */
export type LeaseStatus = "reserved" | "active" | "settled";

/** One lease as stored in the ledger. Money in USD, times in epoch ms. */
export interface LeaseRecord {
  leaseId: string;
  status: LeaseStatus;
  provider: string;
  spec: CostSpec;
  scope: CostScope;
  /** Canonical GPU type billed, when any. */
  gpuType?: string;
  gpuCount: number;
  /** Rate the lease is charged at when settled (request or worst case, per `chargeAt`), USD per second. */
  chargeRateUsdPerSecond: number;
  /** Worst-case rate the reservation was priced at, USD per second. */
  worstCaseRateUsdPerSecond: number;
  /** Money held for the lease until it settles. */
  reservedUsd: number;
  lifetimeMs: number;
  createdAtMs: number;
  /** UTC day (`YYYY-MM-DD`) of the reservation: the lease counts in this day's and month's budgets. */
  day: string;
  month: string;
  sandboxId?: string;
  activatedAtMs?: number;
  heartbeatAtMs: number;
  settledAtMs?: number;
  chargedUsd?: number;
  durationMs?: number;
  settleReason?: string;
  priceTableVersion: string;
}

interface LeaseRow {
  lease_id: string;
  status: LeaseStatus;
  provider: string;
  spec_json: string;
  gpu_type: string | null;
  gpu_count: number;
  user_id: string | null;
  session_id: string | null;
  tags_json: string | null;
  charge_rate_usd_per_s: number;
  worst_rate_usd_per_s: number;
  reserved_nusd: number;
  lifetime_ms: number;
  created_at_ms: number;
  day: string;
  month: string;
  sandbox_id: string | null;
  activated_at_ms: number | null;
  heartbeat_at_ms: number;
  settled_at_ms: number | null;
  charged_nusd: number | null;
  duration_ms: number | null;
  settle_reason: string | null;
  price_version: string;
}

/** A new lease to insert (status `reserved`). */
export interface NewLease {
  leaseId: string;
  provider: string;
  spec: CostSpec;
  scope: CostScope;
  gpuType?: string;
  gpuCount: number;
  chargeRateUsdPerSecond: number;
  worstCaseRateUsdPerSecond: number;
  reservedNanoUsd: number;
  lifetimeMs: number;
  createdAtMs: number;
  day: string;
  month: string;
  priceTableVersion: string;
}

interface SettledRow {
  reserved_nusd: number;
  charged_nusd: number;
  duration_ms: number;
  user_id: string | null;
  session_id: string | null;
  tags_json: string | null;
  day: string;
  month: string;
}

/** What settling a lease returns: the amounts (nano-USD) and where the lease is counted. */
export interface SettledLease {
  reservedNanoUsd: number;
  chargedNanoUsd: number;
  durationMs: number;
  scope: CostScope;
  day: string;
  month: string;
}

/** Spent and reserved totals of one counter (scope key + period key), in nano-USD. */
export interface CounterTotals {
  spentNanoUsd: number;
  reservedNanoUsd: number;
}

/** Options to open a ledger. */
export interface LedgerOpenOptions {
  /** A file path or `:memory:`. */
  path: string;
  /**
   * How long a statement waits (blocking the thread: SQLite's busy handler sleeps) for another process's
   * transaction, in ms; change it later with {@link Ledger.setBusyTimeout}. @default 5000
   */
  busyTimeoutMs?: number;
  /** `normal` survives process crashes; `full` also survives power loss (slower). @default "normal" */
  synchronous?: "normal" | "full";
  /** Refuse to create a new ledger (for reports). @default false */
  mustExist?: boolean;
  /**
   * Create the ledger's directory (and missing parents) with mode 0700 when it does not exist; otherwise a
   * missing directory is NOT_FOUND. @default false
   */
  createDirectory?: boolean;
  /**
   * SQLite driver: `node` (node:sqlite, built into Node 22.13+ and 24), `better-sqlite3` (optional native
   * addon), or `auto` (node:sqlite where Node has it, else better-sqlite3; `AGENT_RUNTIME_SQLITE_DRIVER`
   * overrides it). Both read and write the same files. @default "auto"
   */
  driver?: SqliteDriverChoice;
}

/** Mode of ledger files this package creates (the db; SQLite gives its -wal and -shm the db's mode). */
export const LEDGER_FILE_MODE = 0o600;
/** Mode of a ledger directory this package creates. */
export const LEDGER_DIR_MODE = 0o700;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
  lease_id TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('reserved', 'active', 'settled')),
  provider TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  gpu_type TEXT,
  gpu_count INTEGER NOT NULL DEFAULT 0,
  user_id TEXT,
  session_id TEXT,
  tags_json TEXT,
  charge_rate_usd_per_s REAL NOT NULL,
  worst_rate_usd_per_s REAL NOT NULL,
  reserved_nusd INTEGER NOT NULL,
  lifetime_ms INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  day TEXT NOT NULL,
  month TEXT NOT NULL,
  sandbox_id TEXT,
  activated_at_ms INTEGER,
  heartbeat_at_ms INTEGER NOT NULL,
  settled_at_ms INTEGER,
  charged_nusd INTEGER,
  duration_ms INTEGER,
  settle_reason TEXT,
  price_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_open ON leases (created_at_ms) WHERE status <> 'settled';
CREATE INDEX IF NOT EXISTS leases_created ON leases (created_at_ms);
CREATE TABLE IF NOT EXISTS counters (
  scope_key TEXT NOT NULL,
  period_key TEXT NOT NULL,
  spent_nusd INTEGER NOT NULL DEFAULT 0,
  reserved_nusd INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (scope_key, period_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS warnings (
  budget TEXT NOT NULL,
  scope_key TEXT NOT NULL,
  period_key TEXT NOT NULL,
  percent REAL NOT NULL,
  at_ms INTEGER NOT NULL,
  PRIMARY KEY (budget, scope_key, period_key, percent)
) WITHOUT ROWID;
`;

function toRecord(r: LeaseRow): LeaseRecord {
  const scope: CostScope = {};
  if (r.user_id !== null) scope.userId = r.user_id;
  if (r.session_id !== null) scope.sessionId = r.session_id;
  if (r.tags_json !== null) scope.tags = JSON.parse(r.tags_json) as Record<string, string>;
  return {
    leaseId: r.lease_id,
    status: r.status,
    provider: r.provider,
    spec: JSON.parse(r.spec_json) as CostSpec,
    scope,
    ...(r.gpu_type !== null ? { gpuType: r.gpu_type } : {}),
    gpuCount: r.gpu_count,
    chargeRateUsdPerSecond: r.charge_rate_usd_per_s,
    worstCaseRateUsdPerSecond: r.worst_rate_usd_per_s,
    reservedUsd: fromNanoUsd(r.reserved_nusd),
    lifetimeMs: r.lifetime_ms,
    createdAtMs: r.created_at_ms,
    day: r.day,
    month: r.month,
    ...(r.sandbox_id !== null ? { sandboxId: r.sandbox_id } : {}),
    ...(r.activated_at_ms !== null ? { activatedAtMs: r.activated_at_ms } : {}),
    heartbeatAtMs: r.heartbeat_at_ms,
    ...(r.settled_at_ms !== null ? { settledAtMs: r.settled_at_ms } : {}),
    ...(r.charged_nusd !== null ? { chargedUsd: fromNanoUsd(r.charged_nusd) } : {}),
    ...(r.duration_ms !== null ? { durationMs: r.duration_ms } : {}),
    ...(r.settle_reason !== null ? { settleReason: r.settle_reason } : {}),
    priceTableVersion: r.price_version,
  };
}

/** SQL pieces selecting the leases a budget scope applies to and the scope key of each. */
export function scopeSql(scope: BudgetScope): { keyExpr: string; where: string; params: unknown[] } {
  switch (scope.kind) {
    case "global":
      return { keyExpr: "'global'", where: "1", params: [] };
    case "user":
    case "session": {
      const col = scope.kind === "user" ? "user_id" : "session_id";
      return scope.value === undefined
        ? { keyExpr: `'${scope.kind}:' || ${col}`, where: `${col} IS NOT NULL`, params: [] }
        : { keyExpr: `'${scope.kind}:' || ${col}`, where: `${col} = ?`, params: [scope.value] };
    }
    case "tag": {
      // Tag keys are restricted to [A-Za-z0-9._/-], so quoting them inside a JSON path is safe.
      const value = `json_extract(tags_json, '$."${scope.key}"')`;
      const keyExpr = `'tag:${scope.key}=' || ${value}`;
      return scope.value === undefined
        ? { keyExpr, where: `${value} IS NOT NULL`, params: [] }
        : { keyExpr, where: `${value} = ?`, params: [scope.value] };
    }
  }
}

/** SQL expression of a budget period's key for a lease. */
export function periodSql(period: BudgetPeriod): string {
  return period === "total" ? "'total'" : period === "daily" ? "'day:' || day" : "'month:' || month";
}

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
    const memory = options.path === ":memory:";
    if (!memory && options.path !== "") {
      const dir = dirname(resolve(options.path));
      if (options.mustExist && !existsSync(options.path)) {
        throw new RuntimeError(
          "NOT_FOUND",
          `No ledger at ${options.path}: pass the path a cost guard writes to (--db or AGENT_RUNTIME_COST_DB).`,
        );
      }
      if (!existsSync(dir)) {
        if (!options.createDirectory) {
          throw new RuntimeError(
            "NOT_FOUND",
            `Cannot open the ledger ${options.path}: directory ${dir} does not exist. Create it first ` +
              "(mode 0700), or set createLedgerDirectory: true.",
          );
        }
        try {
          mkdirSync(dir, { recursive: true, mode: LEDGER_DIR_MODE });
        } catch (err) {
          throw toCostError(err, options.path);
        }
      }
      // Created here with 0600 (not SQLite's 0644): the ledger names users and sessions. SQLite creates the
      // -wal and -shm files with the database file's mode. "a" neither truncates nor fails if a concurrent
      // opener made it first; an empty file is an empty database.
      if (!existsSync(options.path)) {
        try {
          closeSync(openSync(options.path, "a", LEDGER_FILE_MODE));
        } catch (err) {
          throw toCostError(err, options.path);
        }
      }
    }
    let db: Database | undefined;
    try {
      db = open(options.path, {
        driver: options.driver ?? "auto",
        busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      });
      // Already WAL (the mode is stored in the file): do not ask again.
      if (!memory && db.pragma("journal_mode", { simple: true }) !== "wal") db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
      db.pragma("foreign_keys = ON");
      const version = this.migrate(db);
      if (version > LEDGER_SCHEMA_VERSION) {
        throw new RuntimeError(
          "FAILED_PRECONDITION",
          `The ledger ${options.path} has schema version ${version}; this cost-guard reads up to ` +
            `${LEDGER_SCHEMA_VERSION}. Upgrade @agent-runtime/cost-guard.`,
        );
      }
      this.db = db;
      this.#stmts = this.prepareStatements();
      this.ledgerId = this.getMeta("ledger_id")!;
    } catch (err) {
      db?.close();
      throw toCostError(err, options.path);
    }
  }

  private migrate(db: Database): number {
    // An existing ledger is only read: opening it takes no write lock, so it never waits for another writer.
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
    if (hasMeta) {
      const rows = db
        .prepare<[], { key: string; value: string }>(
          "SELECT key, value FROM meta WHERE key IN ('schema_version', 'ledger_id')",
        )
        .all();
      const version = rows.find((r) => r.key === "schema_version");
      if (version && rows.length === 2 && Number(version.value) >= LEDGER_SCHEMA_VERSION) {
        return Number(version.value);
      }
    }
    return db.transaction(() => {
      db.exec(SCHEMA);
      const get = db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?");
      const set = db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)");
      set.run("schema_version", String(LEDGER_SCHEMA_VERSION));
      set.run("ledger_id", randomBytes(8).toString("hex"));
      return Number(get.get("schema_version")!.value);
    }, "immediate");
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
    const tags = l.scope.tags && Object.keys(l.scope.tags).length ? JSON.stringify(l.scope.tags) : null;
    this.#stmts.insertLease.run(
      l.leaseId,
      l.provider,
      JSON.stringify(l.spec),
      l.gpuType ?? null,
      l.gpuCount,
      l.scope.userId ?? null,
      l.scope.sessionId ?? null,
      tags,
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
    const scope: CostScope = {};
    if (row.user_id !== null) scope.userId = row.user_id;
    if (row.session_id !== null) scope.sessionId = row.session_id;
    if (row.tags_json !== null) scope.tags = JSON.parse(row.tags_json) as Record<string, string>;
    return {
      reservedNanoUsd: row.reserved_nusd,
      chargedNanoUsd: row.charged_nusd,
      durationMs: row.duration_ms,
      scope,
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
  aggregate(
    scope: BudgetScope,
    period: BudgetPeriod,
    onlyPeriodKey?: string,
  ): { scopeKey: string; periodKey: string; spentNanoUsd: number; reservedNanoUsd: number }[] {
    const s = scopeSql(scope);
    const p = periodSql(period);
    const periodWhere = onlyPeriodKey === undefined ? "" : ` AND ${p} = ?`;
    const rows = this.db
      .prepare<unknown[], { scope_key: string; period_key: string; spent: number; reserved: number }>(
        `SELECT ${s.keyExpr} AS scope_key, ${p} AS period_key,
           SUM(CASE WHEN status = 'settled' THEN charged_nusd ELSE 0 END) AS spent,
           SUM(CASE WHEN status <> 'settled' THEN reserved_nusd ELSE 0 END) AS reserved
         FROM leases WHERE ${s.where}${periodWhere} GROUP BY 1, 2`,
      )
      .all(...s.params, ...(onlyPeriodKey === undefined ? [] : [onlyPeriodKey]));
    return rows.map((r) => ({
      scopeKey: r.scope_key,
      periodKey: r.period_key,
      spentNanoUsd: r.spent,
      reservedNanoUsd: r.reserved,
    }));
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
