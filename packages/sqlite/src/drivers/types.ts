import type { SqliteDriverName, SqliteError } from "../errors.js";

/** The part of a driver's prepared statement this package calls (both drivers have it). */
export interface RawStatement {
  run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** One open connection of a driver, adapted to what the shared {@link SqliteDatabase} needs. */
export interface DriverConnection {
  readonly driver: SqliteDriverName;
  /** Rows are null-prototype objects (node:sqlite) and are copied to plain objects. */
  readonly nullPrototypeRows: boolean;
  exec(sql: string): void;
  prepare(sql: string): RawStatement;
  /** Rows of `PRAGMA <source>` (empty for pragmas that only set). */
  pragma(source: string): Record<string, unknown>[];
  /** Whether SQLite is inside a transaction; undefined when this driver version cannot tell. */
  inTransaction(): boolean | undefined;
  close(): void;
  /** The driver's error as a {@link SqliteError}, or undefined when it is not a SQLite failure. */
  toSqliteError(err: unknown): SqliteError | undefined;
}

/** A loaded driver: opens connections. */
export interface Driver {
  readonly name: SqliteDriverName;
  open(path: string): DriverConnection;
}
