/**
 * The same behaviour on every driver that works on this Node: rows, results, parameters, transactions,
 * pragmas and errors. On Node 20 that is better-sqlite3; on Node 22.13+ and 24, node:sqlite, and
 * better-sqlite3 too when its native addon loads.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  availableDrivers,
  type Database,
  isSqliteBusyError,
  nodeSqliteSupported,
  open,
  SqliteError,
} from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "sqlite-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const opened: Database[] = [];
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
});
let n = 0;
const file = () => join(dir, `db-${n++}.sqlite`);

describe("drivers on this Node", () => {
  it("node:sqlite where Node has it, better-sqlite3 on Node 20", () => {
    const drivers = availableDrivers();
    expect(drivers.length).toBeGreaterThan(0);
    if (nodeSqliteSupported()) expect(drivers[0]).toBe("node");
    else expect(drivers).toEqual(["better-sqlite3"]);
  });
});

describe.each(availableDrivers())("driver %s", (driver) => {
  const openDb = (path = ":memory:", busyTimeoutMs?: number): Database => {
    const db = open(path, { driver, ...(busyTimeoutMs === undefined ? {} : { busyTimeoutMs }) });
    opened.push(db);
    return db;
  };

  it("reports its driver, path and state", () => {
    const db = openDb();
    expect(db.driver).toBe(driver);
    expect(db.path).toBe(":memory:");
    expect(db.open).toBe(true);
    db.close();
    db.close(); // idempotent
    expect(db.open).toBe(false);
  });

  it("returns plain-object rows, undefined for no row, and numeric run() results", () => {
    const db = openDb();
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, r REAL, b BLOB)");
    const insert = db.prepare<[string, number, number, Uint8Array | null]>(
      "INSERT INTO t (name, n, r, b) VALUES (?, ?, ?, ?)",
    );
    expect(insert.run("a", 1, 0.5, null)).toEqual({ changes: 1, lastInsertRowid: 1 });
    expect(insert.run("b", 2 ** 40, 1.25, new Uint8Array([1, 2]))).toEqual({
      changes: 1,
      lastInsertRowid: 2,
    });
    const row = db.prepare<[number], Record<string, unknown>>("SELECT * FROM t WHERE id = ?").get(2)!;
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(row).toMatchObject({ id: 2, name: "b", n: 2 ** 40, r: 1.25 });
    expect([...(row.b as Uint8Array)]).toEqual([1, 2]);
    expect(db.prepare("SELECT * FROM t WHERE id = 99").get()).toBeUndefined();
    const all = db.prepare<[], { id: number }>("SELECT id FROM t ORDER BY id").all();
    expect(all).toStrictEqual([{ id: 1 }, { id: 2 }]);
    expect(db.prepare("UPDATE t SET n = n + 1").run()).toMatchObject({ changes: 2 });
    expect(insert.sql).toContain("INSERT INTO t");
  });

  it("binds named parameters written @x, :x or $x from keys without the prefix, and mixed with positional", () => {
    const db = openDb();
    db.exec("CREATE TABLE t (a TEXT, b TEXT, c TEXT)");
    db.prepare("INSERT INTO t VALUES (@a, :b, $c)").run({ a: "1", b: "2", c: "3" });
    expect(db.prepare("SELECT * FROM t").get()).toEqual({ a: "1", b: "2", c: "3" });
    db.prepare("INSERT INTO t VALUES (@a, @a, ?)").run({ a: "x" }, "y");
    expect(db.prepare("SELECT * FROM t WHERE a = @a").all({ a: "x" })).toEqual([{ a: "x", b: "x", c: "y" }]);
  });

  it("commits a transaction, rolls it back when the function throws, and nests as savepoints", () => {
    const db = openDb();
    db.exec("CREATE TABLE t (v INTEGER)");
    const put = db.prepare<[number]>("INSERT INTO t VALUES (?)");
    const count = () => (db.prepare("SELECT COUNT(*) AS n FROM t").get() as { n: number }).n;
    expect(
      db.transaction(() => {
        put.run(1);
        return "done";
      }, "immediate"),
    ).toBe("done");
    expect(db.inTransaction).toBe(false);
    expect(() =>
      db.transaction(() => {
        put.run(2);
        expect(db.inTransaction).toBe(true);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(count()).toBe(1);
    db.transaction(() => {
      put.run(3);
      expect(() =>
        db.transaction(() => {
          put.run(4);
          throw new Error("inner");
        }),
      ).toThrow("inner");
      db.transaction(() => put.run(5)); // a savepoint that is released
    }, "exclusive");
    expect(
      db
        .prepare<[], { v: number }>("SELECT v FROM t ORDER BY v")
        .all()
        .map((r) => r.v),
    ).toEqual([1, 3, 5]);
    expect(db.inTransaction).toBe(false);
  });

  it("refuses an async transaction function and rolls it back", async () => {
    const db = openDb();
    db.exec("CREATE TABLE t (v INTEGER)");
    let pending: Promise<void> | undefined;
    expect(() =>
      db.transaction(() => {
        db.exec("INSERT INTO t VALUES (1)");
        pending = Promise.resolve();
        return pending;
      }),
    ).toThrow(TypeError);
    await pending;
    expect(db.prepare("SELECT COUNT(*) AS n FROM t").get()).toEqual({ n: 0 });
  });

  it("reads and sets pragmas, simple or as rows", () => {
    const path = file();
    const db = openDb(path, 1234);
    expect(db.pragma("busy_timeout", { simple: true })).toBe(1234);
    expect(db.pragma("journal_mode = WAL")).toEqual([{ journal_mode: "wal" }]);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("synchronous = NORMAL")).toEqual([]);
    expect(db.pragma("synchronous", { simple: true })).toBe(1);
    expect(db.pragma("foreign_keys", { simple: true })).toBe(1); // on by default on both drivers
    expect(openDb().pragma("busy_timeout", { simple: true })).toBe(5000); // the default
  });

  it("raises SqliteError with the extended code name and number", () => {
    const db = openDb();
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY)");
    db.prepare("INSERT INTO t VALUES ('a')").run();
    const err = (() => {
      try {
        db.prepare("INSERT INTO t VALUES ('a')").run();
      } catch (e) {
        return e;
      }
    })() as SqliteError;
    expect(err).toBeInstanceOf(SqliteError);
    expect(err).toMatchObject({ code: "SQLITE_CONSTRAINT_PRIMARYKEY", errcode: 1555, driver });
    expect(err.primaryCode).toBe("SQLITE_CONSTRAINT");
    expect(err.cause).toBeDefined();
    expect(() => db.exec("SELEC 1")).toThrow(expect.objectContaining({ code: "SQLITE_ERROR" }));
    expect(() => db.prepare("SELECT * FROM missing")).toThrow(SqliteError);
  });

  it("fails at once with SQLITE_BUSY on a locked file with busy timeout 0, waits with a timeout", () => {
    const path = file();
    const a = openDb(path);
    a.pragma("journal_mode = WAL");
    a.exec("CREATE TABLE t (v INTEGER)");
    const b = openDb(path, 0);
    a.exec("BEGIN IMMEDIATE");
    let t0 = performance.now();
    let busy: unknown;
    try {
      b.exec("BEGIN IMMEDIATE");
    } catch (e) {
      busy = e;
    }
    // At busy timeout 0 it fails without waiting (the default timeout waits seconds).
    expect(performance.now() - t0).toBeLessThan(500);
    expect(busy).toMatchObject({ code: "SQLITE_BUSY", errcode: 5 });
    expect(isSqliteBusyError(busy)).toBe(true);
    expect(isSqliteBusyError(new Error("wrapped", { cause: busy }))).toBe(true);
    expect(isSqliteBusyError(new Error("database is locked"))).toBe(false);
    // Through the transaction helper, with a timeout: it waits, then fails the same way.
    b.pragma("busy_timeout = 150");
    t0 = performance.now();
    expect(() => b.transaction(() => b.exec("INSERT INTO t VALUES (1)"), "immediate")).toThrow(
      expect.objectContaining({ code: "SQLITE_BUSY" }),
    );
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100);
    expect(b.inTransaction).toBe(false);
    a.exec("COMMIT");
    b.transaction(() => b.exec("INSERT INTO t VALUES (1)"), "immediate");
    // Reads do not wait for a writer in WAL mode.
    a.exec("BEGIN IMMEDIATE");
    expect(b.prepare("SELECT COUNT(*) AS n FROM t").get()).toEqual({ n: 1 });
    a.exec("ROLLBACK");
  });

  it("a missing directory is SQLITE_CANTOPEN", () => {
    expect(() => open(join(dir, "missing", "x.db"), { driver })).toThrow(
      expect.objectContaining({ code: "SQLITE_CANTOPEN", driver }),
    );
  });
});

describe.runIf(availableDrivers().length === 2)("both drivers on one file", () => {
  const holder = join(import.meta.dirname, "..", "test", "support", "lock-holder.ts");

  it.each([
    ["node", "better-sqlite3"],
    ["better-sqlite3", "node"],
  ] as const)(
    "%s sees the write lock %s holds in another process, then reads its row",
    async (mine, theirs) => {
      const path = file();
      const db = openDbWith(path, mine, 0);
      db.pragma("journal_mode = WAL");
      db.exec("CREATE TABLE t (v TEXT)");
      const child = spawn(process.execPath, ["--import", "tsx", holder, path, theirs], {
        cwd: join(import.meta.dirname, ".."),
        stdio: ["pipe", "pipe", "inherit"],
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
      expect(() => db.exec("BEGIN IMMEDIATE")).toThrow(expect.objectContaining({ code: "SQLITE_BUSY" }));
      child.stdin!.write("commit\n");
      expect(await exited).toBe(0);
      expect(db.prepare("SELECT v FROM t").all()).toEqual([{ v: `from ${theirs}` }]);
    },
    30_000,
  );

  it("refuses to open one file through both drivers in one process (their locks would not see each other)", () => {
    const path = file();
    const a = openDbWith(path, "node");
    expect(() => open(path, { driver: "better-sqlite3" })).toThrow(
      expect.objectContaining({
        code: "SQLITE_MISUSE",
        message: expect.stringContaining("one driver per file"),
      }),
    );
    const again = openDbWith(path, "node"); // more connections through the same driver are fine
    a.close();
    again.close();
    openDbWith(path, "better-sqlite3").close(); // and the other driver once the file is closed
  });
});

function openDbWith(path: string, driver: "node" | "better-sqlite3", busyTimeoutMs?: number): Database {
  const db = open(path, { driver, ...(busyTimeoutMs === undefined ? {} : { busyTimeoutMs }) });
  opened.push(db);
  return db;
}
