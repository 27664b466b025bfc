import { createRequire } from "node:module";
import {
  type DriverUnavailableReasons,
  type SqliteDriverName,
  SqliteDriverUnavailableError,
} from "../errors.js";
import { type BetterSqlite3Module, betterSqlite3Driver } from "./better-sqlite3.js";
import { type NodeSqliteModule, nodeSqliteDriver, nodeSqliteSupported } from "./node-sqlite.js";
import type { Driver } from "./types.js";

/** Which driver to use: `auto` takes node:sqlite where Node has it, else better-sqlite3. */
export type SqliteDriverChoice = SqliteDriverName | "auto";

/** Drivers in the order `auto` prefers them. */
export const SQLITE_DRIVERS: readonly SqliteDriverName[] = ["node", "better-sqlite3"];

/** Environment variable that sets the driver `auto` means (for running a whole process on one driver). */
export const SQLITE_DRIVER_ENV = "AGENT_RUNTIME_SQLITE_DRIVER";

/**
 * Environment variable naming a `better_sqlite3.node` to load instead of the one built at install: for a
 * checkout shared by several Node versions, whose installed addon fits only the Node that installed it.
 */
export const BETTER_SQLITE3_BINDING_ENV = "AGENT_RUNTIME_BETTER_SQLITE3_BINDING";

type DriverStatus = { available: true; driver: Driver } | { available: false; reason: string };

const requireHere = createRequire(import.meta.url);
// Loading is tried once per process and driver: a driver's presence does not change while it runs.
const statuses = new Map<SqliteDriverName, DriverStatus>();

/**
 * `require`s a module with ExperimentalWarnings silenced for the duration of the call: Node 22 prints "SQLite
 * is an experimental feature" when node:sqlite loads, which would land in every host's stderr. Other warnings,
 * and ExperimentalWarnings raised at any other time, go through.
 */
function requireQuietly(id: string): unknown {
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const type =
      typeof warning !== "string"
        ? warning.name
        : typeof rest[0] === "string"
          ? rest[0]
          : (rest[0] as { type?: string } | undefined)?.type;
    if (type === "ExperimentalWarning") return;
    (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return requireHere(id);
  } finally {
    process.emitWarning = emitWarning;
  }
}

function errorText(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message.split("\n")[0] : String(err);
  return typeof code === "string" ? `${code}: ${message}` : (message ?? "");
}

function load(name: SqliteDriverName): DriverStatus {
  const node = process.versions.node;
  if (name === "node") {
    if (!nodeSqliteSupported(node))
      return {
        available: false,
        reason: `node:sqlite is built in from Node 22.13 (and 24); this is Node ${node}`,
      };
    try {
      return { available: true, driver: nodeSqliteDriver(requireQuietly("node:sqlite") as NodeSqliteModule) };
    } catch (err) {
      return { available: false, reason: `node:sqlite did not load on Node ${node} (${errorText(err)})` };
    }
  }
  try {
    const binding = process.env[BETTER_SQLITE3_BINDING_ENV] || undefined;
    const driver = betterSqlite3Driver(requireHere("better-sqlite3") as BetterSqlite3Module, binding);
    // better-sqlite3 loads its native addon at the first open: open one to know that the addon works here.
    driver.open(":memory:").close();
    return { available: true, driver };
  } catch (err) {
    return {
      available: false,
      reason:
        `better-sqlite3 is not installed or its native addon does not load on Node ${node} ` +
        `(ABI ${process.versions.modules}): ${errorText(err)}`,
    };
  }
}

function status(name: SqliteDriverName): DriverStatus {
  let s = statuses.get(name);
  if (s === undefined) {
    s = load(name);
    statuses.set(name, s);
  }
  return s;
}

/** The drivers that work on this Node, in the order `auto` prefers them (node:sqlite first). */
export function availableDrivers(): SqliteDriverName[] {
  return SQLITE_DRIVERS.filter((name) => status(name).available);
}

/** Why each unavailable driver cannot be used here (empty when both can). */
export function unavailableDrivers(): DriverUnavailableReasons {
  const reasons: DriverUnavailableReasons = {};
  for (const name of SQLITE_DRIVERS) {
    const s = status(name);
    if (!s.available) reasons[name] = s.reason;
  }
  return reasons;
}

function isChoice(value: string): value is SqliteDriverChoice {
  return value === "auto" || (SQLITE_DRIVERS as readonly string[]).includes(value);
}

/**
 * The driver a choice means here. `auto` (or no choice) follows {@link SQLITE_DRIVER_ENV} when it is set,
 * else takes node:sqlite when this Node has it, else better-sqlite3. A forced driver that cannot load, or no
 * driver at all, is a {@link SqliteDriverUnavailableError} naming what to do.
 */
export function resolveDriver(choice: SqliteDriverChoice = "auto"): Driver {
  let wanted: string = choice;
  if (wanted === "auto") {
    const env = process.env[SQLITE_DRIVER_ENV];
    if (env !== undefined && env !== "") {
      if (!isChoice(env)) {
        throw new SqliteDriverUnavailableError(
          `${SQLITE_DRIVER_ENV}=${env} is not a driver: use "node", "better-sqlite3" or "auto".`,
          {},
        );
      }
      wanted = env;
    }
  }
  if (wanted !== "auto") {
    const s = status(wanted as SqliteDriverName);
    if (s.available) return s.driver;
    throw new SqliteDriverUnavailableError(
      `The SQLite driver "${wanted}" cannot be used: ${s.reason}. Use driver "auto"` +
        (wanted === "node" ? ", or Node 22.13+ / 24." : ", or install better-sqlite3 12.x for this Node."),
      { [wanted]: s.reason },
    );
  }
  for (const name of SQLITE_DRIVERS) {
    const s = status(name);
    if (s.available) return s.driver;
  }
  const reasons = unavailableDrivers();
  throw new SqliteDriverUnavailableError(
    `No SQLite driver works on Node ${process.versions.node}: ${Object.values(reasons).join("; ")}. ` +
      "Run on Node 22.13+ or 24 (node:sqlite is built in), or install better-sqlite3 12.x.",
    reasons,
  );
}
