/**
 * @agent-runtime/sqlite: one synchronous SQLite interface over node:sqlite (built into Node 22.13+ and 24: no
 * native addon) and better-sqlite3 (an optional dependency, for Node 20), with the same rows, results, errors
 * and transactions on both.
 */

// Errors and result codes
export type { SqliteCodeName } from "./codes.js";
export { SQLITE_CODES, sqliteCodeName } from "./codes.js";

// Connections and statements
export type { Database, RunResult, Statement, TransactionMode } from "./database.js";

// Drivers
export type { SqliteDriverChoice } from "./drivers/load.js";
export {
  availableDrivers,
  BETTER_SQLITE3_BINDING_ENV,
  SQLITE_DRIVER_ENV,
  SQLITE_DRIVERS,
  unavailableDrivers,
} from "./drivers/load.js";
export { nodeSqliteSupported } from "./drivers/node-sqlite.js";
export type { DriverUnavailableReasons, SqliteDriverName } from "./errors.js";
export { isSqliteBusyError, SqliteDriverUnavailableError, SqliteError } from "./errors.js";
// Opening
export type { OpenOptions } from "./open.js";
export { open } from "./open.js";
