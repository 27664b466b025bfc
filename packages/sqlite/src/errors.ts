import { sqliteCodeName } from "./codes.js";

/** The SQLite drivers this package can use. */
export type SqliteDriverName = "node" | "better-sqlite3";

/**
 * A failure reported by SQLite itself, the same on both drivers: `code` is the extended result code's name
 * (better-sqlite3's `code`, node:sqlite's `errcode` by name), `errcode` its number, `primaryCode` the name of
 * its primary code. The driver's own error is the `cause`.
 */
export class SqliteError extends Error {
  override readonly name = "SqliteError";
  /** Extended result code name, e.g. `SQLITE_BUSY`, `SQLITE_BUSY_SNAPSHOT`, `SQLITE_CONSTRAINT_PRIMARYKEY`. */
  readonly code: string;
  /** Extended result code number, e.g. 5, 517, 1555. */
  readonly errcode: number;
  /** Which driver raised it. */
  readonly driver: SqliteDriverName;

  constructor(message: string, errcode: number, driver: SqliteDriverName, options?: { cause?: unknown }) {
    super(message, options);
    this.errcode = errcode;
    this.code = sqliteCodeName(errcode);
    this.driver = driver;
  }

  /** Primary result code name (`SQLITE_BUSY` for `SQLITE_BUSY_SNAPSHOT`). */
  get primaryCode(): string {
    return sqliteCodeName(this.errcode & 0xff);
  }
}

/** Why a driver cannot be used on this Node, per driver. */
export type DriverUnavailableReasons = Partial<Record<SqliteDriverName, string>>;

/**
 * No SQLite driver can be used: the one forced with `driver` is missing, or (`auto`) neither is.
 * `reasons` says why for each driver tried.
 */
export class SqliteDriverUnavailableError extends Error {
  override readonly name = "SqliteDriverUnavailableError";
  readonly code = "SQLITE_DRIVER_UNAVAILABLE";
  readonly reasons: DriverUnavailableReasons;

  constructor(message: string, reasons: DriverUnavailableReasons) {
    super(message);
    this.reasons = reasons;
  }
}

/**
 * True when `err` (or its cause, two levels deep) is SQLite's "database is locked": SQLITE_BUSY or one of
 * its extended codes, from either driver.
 */
export function isSqliteBusyError(err: unknown): boolean {
  for (
    let e = err, depth = 0;
    e !== undefined && e !== null && depth < 3;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    if (e instanceof SqliteError) return (e.errcode & 0xff) === 5;
    if (typeof e !== "object") return false;
  }
  return false;
}
