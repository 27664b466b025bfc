import { afterEach, describe, expect, it } from "vitest";
import { sqliteCodeName } from "../codes.js";
import { SqliteDriverUnavailableError } from "../errors.js";
import { availableDrivers, resolveDriver, SQLITE_DRIVER_ENV, unavailableDrivers } from "./load.js";
import { nodeSqliteSupported } from "./node-sqlite.js";

afterEach(() => {
  delete process.env[SQLITE_DRIVER_ENV];
});

describe("choosing a driver", () => {
  it("node:sqlite only from Node 22.13 (and 23.4), where it needs no flag", () => {
    expect(nodeSqliteSupported("20.19.0")).toBe(false);
    expect(nodeSqliteSupported("22.12.0")).toBe(false);
    expect(nodeSqliteSupported("22.13.0")).toBe(true);
    expect(nodeSqliteSupported("23.3.0")).toBe(false);
    expect(nodeSqliteSupported("23.4.0")).toBe(true);
    expect(nodeSqliteSupported("24.0.0")).toBe(true);
  });

  it("auto takes the first available driver; the environment variable overrides auto only", () => {
    const drivers = availableDrivers();
    expect(resolveDriver("auto").name).toBe(drivers[0]);
    process.env[SQLITE_DRIVER_ENV] = drivers.at(-1)!;
    expect(resolveDriver().name).toBe(drivers.at(-1));
    expect(resolveDriver(drivers[0]).name).toBe(drivers[0]);
    process.env[SQLITE_DRIVER_ENV] = "sqlite3";
    expect(() => resolveDriver()).toThrow(SqliteDriverUnavailableError);
  });

  it("a forced driver that cannot load fails with what to do, and why", () => {
    const missing = Object.entries(unavailableDrivers());
    for (const [name, reason] of missing) {
      let err: SqliteDriverUnavailableError | undefined;
      try {
        resolveDriver(name as "node" | "better-sqlite3");
      } catch (e) {
        err = e as SqliteDriverUnavailableError;
      }
      expect(err).toBeInstanceOf(SqliteDriverUnavailableError);
      expect(err?.code).toBe("SQLITE_DRIVER_UNAVAILABLE");
      expect(err?.message).toContain(reason);
      expect(err?.reasons).toEqual({ [name]: reason });
    }
    // Every driver is either available or has a reason.
    expect(missing.length + availableDrivers().length).toBe(2);
  });

  it("names result codes, extended ones included", () => {
    expect(sqliteCodeName(5)).toBe("SQLITE_BUSY");
    expect(sqliteCodeName(517)).toBe("SQLITE_BUSY_SNAPSHOT");
    expect(sqliteCodeName(1555)).toBe("SQLITE_CONSTRAINT_PRIMARYKEY");
    expect(sqliteCodeName(10 | (99 << 8))).toBe("SQLITE_IOERR_99");
    expect(sqliteCodeName(250)).toBe("SQLITE_UNKNOWN_250");
  });
});
