import type { DriverConnection, RawStatement } from "./drivers/types.js";
import type { SqliteDriverName } from "./errors.js";

/** What `run()` returns, the same on both drivers (numbers: neither driver is asked for BigInts). */
export interface RunResult {
  /** Rows inserted, updated or deleted by the statement. */
  changes: number;
  /** Rowid of the last row inserted on this connection. */
  lastInsertRowid: number;
}

/**
 * A prepared statement. Parameters are positional (`?`) or one object of named parameters
 * (`@name`, `:name` or `$name` in the SQL, the key without its prefix: `{ name }`), then positional ones.
 * Values: `null`, numbers, bigints, strings, `Uint8Array`. Rows are plain objects on both drivers.
 */
export interface Statement<TParams extends unknown[] = unknown[], TRow = unknown> {
  /** The SQL it was prepared from. */
  readonly sql: string;
  /** Runs it; for writes. */
  run(...params: TParams): RunResult;
  /** The first row, or undefined. */
  get(...params: TParams): TRow | undefined;
  /** Every row. */
  all(...params: TParams): TRow[];
}

/** How `BEGIN` takes locks: `immediate` takes the write lock at once (what writers sharing a file want). */
export type TransactionMode = "deferred" | "immediate" | "exclusive";

/** An open SQLite connection, the same interface on node:sqlite and better-sqlite3. */
export interface Database {
  /** The path it was opened with (or `:memory:`). */
  readonly path: string;
  /** The driver underneath. */
  readonly driver: SqliteDriverName;
  /** False once closed. */
  readonly open: boolean;
  /**
   * True inside a transaction. On Node < 22.16 node:sqlite cannot report it: only transactions begun by
   * {@link Database.transaction} count there, not a `BEGIN` run through `exec`.
   */
  readonly inTransaction: boolean;
  /** Runs one or more statements without parameters. */
  exec(sql: string): void;
  /** Prepares a statement (prepare once, run many times). */
  prepare<TParams extends unknown[] = unknown[], TRow = unknown>(sql: string): Statement<TParams, TRow>;
  /**
   * Runs `fn` in a transaction (`BEGIN <mode>` ... `COMMIT`), or in a savepoint when one is already open, and
   * returns its value; rolls back and rethrows when `fn` throws. `fn` must be synchronous.
   */
  transaction<T>(fn: () => T, mode?: TransactionMode): T;
  /** Rows of `PRAGMA <source>` (empty for a pragma that sets). */
  pragma(source: string): Record<string, unknown>[];
  /** The first column of the first row of `PRAGMA <source>` (e.g. `pragma("journal_mode", { simple: true })`). */
  pragma(source: string, options: { simple: true }): unknown;
  /** Closes the connection; idempotent. */
  close(): void;
}

const SAVEPOINT = '"_agent_runtime_sqlite"';

function plain<T>(row: unknown): T {
  // node:sqlite rows have a null prototype; copy them so both drivers hand out ordinary objects.
  return (row === undefined ? undefined : { ...(row as object) }) as T;
}

class SqliteStatement<TParams extends unknown[], TRow> implements Statement<TParams, TRow> {
  readonly sql: string;
  readonly #raw: RawStatement;
  readonly #conn: DriverConnection;
  readonly #copy: boolean;

  constructor(sql: string, raw: RawStatement, conn: DriverConnection) {
    this.sql = sql;
    this.#raw = raw;
    this.#conn = conn;
    this.#copy = conn.nullPrototypeRows;
  }

  run(...params: TParams): RunResult {
    try {
      const r = this.#raw.run(...params);
      return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
    } catch (err) {
      throw this.#conn.toSqliteError(err) ?? err;
    }
  }

  get(...params: TParams): TRow | undefined {
    try {
      const row = this.#raw.get(...params);
      return this.#copy ? plain<TRow | undefined>(row) : (row as TRow | undefined);
    } catch (err) {
      throw this.#conn.toSqliteError(err) ?? err;
    }
  }

  all(...params: TParams): TRow[] {
    try {
      const rows = this.#raw.all(...params);
      return this.#copy ? rows.map((row) => plain<TRow>(row)) : (rows as TRow[]);
    } catch (err) {
      throw this.#conn.toSqliteError(err) ?? err;
    }
  }
}

/** The one implementation of {@link Database}, over either driver's connection. */
export class SqliteDatabase implements Database {
  readonly path: string;
  readonly driver: SqliteDriverName;
  readonly #conn: DriverConnection;
  #open = true;
  /** Transactions and savepoints begun by `transaction()` and not yet ended. */
  #depth = 0;
  readonly #control = new Map<string, RawStatement>();
  readonly #onClose: (() => void) | undefined;

  constructor(path: string, conn: DriverConnection, onClose?: () => void) {
    this.path = path;
    this.driver = conn.driver;
    this.#conn = conn;
    this.#onClose = onClose;
  }

  get open(): boolean {
    return this.#open;
  }

  get inTransaction(): boolean {
    return this.#conn.inTransaction() ?? this.#depth > 0;
  }

  exec(sql: string): void {
    try {
      this.#conn.exec(sql);
    } catch (err) {
      throw this.#conn.toSqliteError(err) ?? err;
    }
  }

  prepare<TParams extends unknown[] = unknown[], TRow = unknown>(sql: string): Statement<TParams, TRow> {
    try {
      return new SqliteStatement<TParams, TRow>(sql, this.#conn.prepare(sql), this.#conn);
    } catch (err) {
      throw this.#conn.toSqliteError(err) ?? err;
    }
  }

  pragma(source: string): Record<string, unknown>[];
  pragma(source: string, options: { simple: true }): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown {
    let rows: Record<string, unknown>[];
    try {
      rows = this.#conn.pragma(source);
    } catch (err) {
      throw this.#conn.toSqliteError(err) ?? err;
    }
    if (options?.simple) {
      const first = rows[0];
      return first === undefined ? undefined : Object.values(first)[0];
    }
    return this.#conn.nullPrototypeRows ? rows.map((row) => plain<Record<string, unknown>>(row)) : rows;
  }

  /** Runs a transaction-control statement, prepared once per connection. */
  #control1(sql: string): void {
    let stmt = this.#control.get(sql);
    try {
      if (stmt === undefined) {
        stmt = this.#conn.prepare(sql);
        this.#control.set(sql, stmt);
      }
      stmt.run();
    } catch (err) {
      throw this.#conn.toSqliteError(err) ?? err;
    }
  }

  transaction<T>(fn: () => T, mode: TransactionMode = "deferred"): T {
    const nested = this.inTransaction;
    if (nested) this.#control1(`SAVEPOINT ${SAVEPOINT}`);
    else this.#control1(mode === "deferred" ? "BEGIN" : `BEGIN ${mode.toUpperCase()}`);
    this.#depth++;
    try {
      const value = fn();
      if (typeof (value as { then?: unknown } | null)?.then === "function") {
        throw new TypeError("The transaction function returned a promise: transactions are synchronous.");
      }
      this.#control1(nested ? `RELEASE ${SAVEPOINT}` : "COMMIT");
      return value;
    } catch (err) {
      this.#rollback(nested);
      throw err;
    } finally {
      this.#depth--;
    }
  }

  #rollback(nested: boolean): void {
    // SQLite may have rolled back already (some errors end the transaction): then there is nothing to undo.
    const known = this.#conn.inTransaction();
    if (known === false || !this.#open) return;
    try {
      if (nested) {
        this.#control1(`ROLLBACK TO ${SAVEPOINT}`);
        this.#control1(`RELEASE ${SAVEPOINT}`);
      } else {
        this.#control1("ROLLBACK");
      }
    } catch (rollbackError) {
      // Only where the driver cannot tell whether a transaction is open: "no transaction is active" is fine.
      if (known === true) throw rollbackError;
    }
  }

  close(): void {
    if (!this.#open) return;
    this.#control.clear();
    try {
      this.#conn.close();
    } finally {
      this.#open = false;
      this.#onClose?.();
    }
  }
}
