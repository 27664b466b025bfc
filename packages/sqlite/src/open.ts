import { existsSync, realpathSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { SQLITE_CODES } from "./codes.js";
import { type Database, SqliteDatabase } from "./database.js";
import { resolveDriver, type SqliteDriverChoice } from "./drivers/load.js";
import { type SqliteDriverName, SqliteError } from "./errors.js";

/**
 * Files open in this process, by real path: the driver and how many connections. Each driver carries its own
 * copy of SQLite, and POSIX locks do not tell one process's connections apart, so two copies in one process do
 * not see each other's locks (and closing a file in one drops the other's): one file, one driver per process.
 */
const openFiles = new Map<string, { driver: SqliteDriverName; connections: number }>();

/** Options of {@link open}. */
export interface OpenOptions {
  /**
   * Which driver: `node` (node:sqlite, Node 22.13+ and 24), `better-sqlite3` (the optional native addon), or
   * `auto`: node:sqlite where Node has it, else better-sqlite3. `auto` follows `AGENT_RUNTIME_SQLITE_DRIVER`
   * when that is set.
   * @default "auto"
   */
  driver?: SqliteDriverChoice;
  /**
   * How long a statement waits (blocking the thread: SQLite's busy handler sleeps) for another connection's
   * lock before failing with SQLITE_BUSY, in ms; 0 fails at once. Set with `PRAGMA busy_timeout` on both
   * drivers (their own options differ in name and default). Change it later with `pragma("busy_timeout = n")`.
   * @default 5000
   */
  busyTimeoutMs?: number;
}

/**
 * Opens (creating when missing) a SQLite database file, or `:memory:`, through node:sqlite or better-sqlite3.
 * The file gets SQLite's default mode (0644 under a 022 umask): create it first with the mode you want (its
 * -wal and -shm files take the database file's mode). A missing directory is SQLITE_CANTOPEN on both drivers.
 *
 * @example
 * ```ts
 * import { open } from "@agent-runtime/sqlite";
 *
 * const db = open("state.db", { busyTimeoutMs: 0 });
 * db.pragma("journal_mode = WAL");
 * db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)");
 * const put = db.prepare<[string, string]>("INSERT INTO kv VALUES (?, ?)");
 * db.transaction(() => put.run("a", "1"), "immediate");
 * db.prepare<[string], { v: string }>("SELECT v FROM kv WHERE k = ?").get("a"); // { v: "1" }
 * db.close();
 * ```
 */
export function open(path: string, options: OpenOptions = {}): Database {
  const driver = resolveDriver(options.driver);
  const memory = path === ":memory:" || path === "";
  if (!memory && !existsSync(dirname(resolve(path)))) {
    // better-sqlite3 checks this itself with a TypeError; report it as SQLite would, the same on both drivers.
    throw new SqliteError(
      `unable to open database file: directory ${dirname(resolve(path))} does not exist`,
      SQLITE_CODES.SQLITE_CANTOPEN,
      driver.name,
    );
  }
  const conn = driver.open(path);
  let key: string | undefined;
  if (!memory) {
    key = existsSync(path) ? realpathSync(path) : resolve(path);
    const entry = openFiles.get(key);
    if (entry !== undefined && entry.driver !== driver.name) {
      conn.close();
      throw new SqliteError(
        `${path} is already open through the ${entry.driver} driver in this process; opening it through ` +
          `${driver.name} too would bypass SQLite's locks (each driver has its own SQLite). Use one driver per ` +
          "file in a process (other processes may use either).",
        SQLITE_CODES.SQLITE_MISUSE,
        driver.name,
      );
    }
    if (entry === undefined) openFiles.set(key, { driver: driver.name, connections: 1 });
    else entry.connections++;
  }
  const db = new SqliteDatabase(path, conn, () => {
    if (key === undefined) return;
    const entry = openFiles.get(key);
    if (entry !== undefined && --entry.connections === 0) openFiles.delete(key);
  });
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
