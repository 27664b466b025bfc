import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { type Database, open, type SqliteDriverChoice } from "@agent-runtime/sqlite";
import { toCostError } from "./errors.js";

/** Version of the ledger's SQLite schema; a ledger written by a newer version is refused. */
export const LEDGER_SCHEMA_VERSION = 1;

/** Mode of ledger files this package creates (the db; SQLite gives its -wal and -shm the db's mode). */
export const LEDGER_FILE_MODE = 0o600;
/** Mode of a ledger directory this package creates. */
export const LEDGER_DIR_MODE = 0o700;

/** Options to open a ledger. */
export interface LedgerOpenOptions {
  /** A file path or `:memory:`. */
  path: string;
  /**
   * How long a statement waits (blocking the thread: SQLite's busy handler sleeps) for another process's
   * transaction, in ms; change it later with `Ledger.setBusyTimeout`. @default 5000
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

/**
 * Opens (or creates) a ledger database: the file and its directory with private modes, WAL, `synchronous`,
 * and the schema. Refuses a ledger of a newer schema version. Errors are mapped with {@link toCostError}.
 */
export function openLedgerDatabase(options: LedgerOpenOptions): Database {
  const memory = options.path === ":memory:";
  if (!memory && options.path !== "") prepareLedgerFile(options);
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
    const version = migrate(db);
    if (version > LEDGER_SCHEMA_VERSION) {
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        `The ledger ${options.path} has schema version ${version}; this cost-guard reads up to ` +
          `${LEDGER_SCHEMA_VERSION}. Upgrade @agent-runtime/cost-guard.`,
      );
    }
    return db;
  } catch (err) {
    db?.close();
    throw toCostError(err, options.path);
  }
}

/** Checks the ledger's directory (creating it when allowed) and creates the file 0600 when it is new. */
function prepareLedgerFile(options: LedgerOpenOptions): void {
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

/** Creates the schema when missing; returns the stored schema version. */
function migrate(db: Database): number {
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
