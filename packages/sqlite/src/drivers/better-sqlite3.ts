import { sqliteCodeNumber } from "../codes.js";
import { SqliteError } from "../errors.js";
import type { Driver, DriverConnection, RawStatement } from "./types.js";

/** The part of better-sqlite3 this package uses (typed here, so no @types/better-sqlite3 leaks to users). */
export interface BetterSqlite3Module {
  new (path: string, options?: { nativeBinding?: string }): BetterSqlite3Database;
  SqliteError: abstract new (...args: never[]) => Error & { code: string };
}

interface BetterSqlite3Database {
  exec(sql: string): void;
  prepare(sql: string): RawStatement;
  pragma(source: string): unknown;
  close(): void;
  readonly inTransaction: boolean;
}

/**
 * The better-sqlite3 driver over a loaded module; `nativeBinding` is the path of a `better_sqlite3.node` to
 * load instead of the one built at install (one built for another Node than the install ran under).
 */
export function betterSqlite3Driver(mod: BetterSqlite3Module, nativeBinding?: string): Driver {
  const options = nativeBinding ? { nativeBinding } : undefined;
  const toSqliteError = (err: unknown): SqliteError | undefined =>
    err instanceof mod.SqliteError
      ? new SqliteError(err.message, sqliteCodeNumber(err.code), "better-sqlite3", { cause: err })
      : undefined;
  return {
    name: "better-sqlite3",
    open(path: string): DriverConnection {
      let db: BetterSqlite3Database;
      try {
        // The busy timeout is set by the caller through the pragma, the same way on both drivers.
        db = new mod(path, options);
      } catch (err) {
        throw toSqliteError(err) ?? err;
      }
      return {
        driver: "better-sqlite3",
        nullPrototypeRows: false,
        exec: (sql) => db.exec(sql),
        prepare: (sql) => db.prepare(sql),
        pragma: (source) => db.pragma(source) as Record<string, unknown>[],
        inTransaction: () => db.inTransaction,
        close: () => db.close(),
        toSqliteError,
      };
    },
  };
}
