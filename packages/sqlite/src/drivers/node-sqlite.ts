import { SqliteError } from "../errors.js";
import type { Driver, DriverConnection, RawStatement } from "./types.js";

/** The part of `node:sqlite` this package uses (typed here: @types/node 20 has no `node:sqlite`). */
export interface NodeSqliteModule {
  DatabaseSync: new (
    path: string,
    options?: { enableForeignKeyConstraints?: boolean; enableDoubleQuotedStringLiterals?: boolean },
  ) => NodeSqliteDatabase;
}

interface NodeSqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): RawStatement;
  close(): void;
  /** Node 22.16+ and 24 only. */
  readonly isTransaction?: boolean;
}

/** node:sqlite is built in and unflagged from Node 22.13 (and 23.4); before that it needs a flag: absent. */
export function nodeSqliteSupported(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major >= 24 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);
}

function toSqliteError(err: unknown): SqliteError | undefined {
  const e = err as { code?: unknown; errcode?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== "object" || e.code !== "ERR_SQLITE_ERROR" || typeof e.errcode !== "number")
    return undefined;
  return new SqliteError(String(e.message), e.errcode, "node", { cause: err });
}

/** The node:sqlite driver over a loaded module. */
export function nodeSqliteDriver(mod: NodeSqliteModule): Driver {
  return {
    name: "node",
    open(path: string): DriverConnection {
      let db: NodeSqliteDatabase;
      try {
        // Both drivers then behave alike: foreign keys on, double-quoted strings are identifiers (better-sqlite3 is
        // compiled with SQLITE_DEFAULT_FOREIGN_KEYS=1 and SQLITE_DQS=0).
        db = new mod.DatabaseSync(path, {
          enableForeignKeyConstraints: true,
          enableDoubleQuotedStringLiterals: false,
        });
      } catch (err) {
        throw toSqliteError(err) ?? err;
      }
      return {
        driver: "node",
        nullPrototypeRows: true,
        exec: (sql) => db.exec(sql),
        prepare: (sql) => db.prepare(sql),
        pragma: (source) => db.prepare(`PRAGMA ${source}`).all() as Record<string, unknown>[],
        inTransaction: () => db.isTransaction,
        close: () => db.close(),
        toSqliteError,
      };
    },
  };
}
