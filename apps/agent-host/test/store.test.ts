/**
 * The host's SQLite store behaves the same on every SQLite driver this Node has (node:sqlite on Node 22.13+
 * and 24, better-sqlite3 where its addon loads), and a file written by one driver is read by the other.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { availableDrivers, type SqliteDriverName } from "@agent-runtime/sqlite";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { HostStore } from "../src/store.js";
import { tempDir } from "./helpers.js";

const dir = tempDir();
afterAll(() => dir.cleanup());
const stores: HostStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});
let n = 0;

function openStore(driver: SqliteDriverName, path = join(dir.path, `store-${n++}.db`)): HostStore {
  const store = new HostStore(path, { driver });
  stores.push(store);
  return store;
}

describe.each(availableDrivers())("driver %s", (driver) => {
  it("keeps sessions, handles and leases; a taken id is ALREADY_EXISTS", () => {
    const store = openStore(driver);
    const s = store.insertSession({ id: "s1", backend: "local", labels: { team: "a" }, nowMs: 1000 });
    expect(s).toMatchObject({ id: "s1", backend: "local", state: "starting", labels: { team: "a" } });
    expect(s).toMatchObject({ runtimeStatus: null, error: null, createdAtMs: 1000, readyAtMs: null });
    expect(() => store.insertSession({ id: "s1", backend: "local", labels: {}, nowMs: 1001 })).toThrow(
      expect.objectContaining({ code: "ALREADY_EXISTS" }),
    );
    store.updateSession("s1", "ready", 2000, { runtimeStatus: "READY" });
    expect(store.getSession("s1")).toMatchObject({ state: "ready", runtimeStatus: "READY", readyAtMs: 2000 });
    store.updateSession("s1", "error", 3000, { error: { code: "TIMEOUT", message: "late" } });
    expect(store.getSession("s1")).toMatchObject({
      state: "error",
      runtimeStatus: "READY", // kept when not given
      error: { code: "TIMEOUT", message: "late" },
      readyAtMs: 2000,
    });
    store.insertSession({ id: "s2", backend: "modal", labels: {}, nowMs: 1500 });
    expect(store.listSessions().map((r) => r.id)).toEqual(["s1", "s2"]);
    expect(store.openSessions().map((r) => r.id)).toEqual(["s2"]);
    expect(store.getSession("nope")).toBeUndefined();

    store.setHandle("s2", { backend: "modal", version: 1, data: { id: "sb-1" } } as never, 1600);
    expect(store.handleOf("s2")).toEqual({ backend: "modal", version: 1, data: { id: "sb-1" } });
    store.setHandle("s2", null, 1700);
    expect(store.handleOf("s2")).toBeUndefined();
    expect(store.leaseOf("s2")).toBeUndefined();
    store.setLeaseId("s2", "cg-1");
    expect(store.leaseOf("s2")).toBe("cg-1");
  });

  it("numbers tasks per session, runs each state change once, and counts them", () => {
    const store = openStore(driver);
    store.insertSession({ id: "s", backend: "local", labels: {}, nowMs: 1 });
    const t1 = store.insertTask({ id: "t1", sessionId: "s", action: { action: "run" }, nowMs: 2 });
    const t2 = store.insertTask({ id: "t2", sessionId: "s", action: { action: "read" }, nowMs: 3 });
    expect([t1.seq, t2.seq]).toEqual([1, 2]);
    expect(t1).toMatchObject({ state: "queued", action: { action: "run" }, observation: null });
    expect(store.startTask("t1", 4)).toBe(true);
    expect(store.startTask("t1", 5)).toBe(false);
    expect(store.finishTask("t1", "completed", 6, { observation: { content: "ok" } })).toBe(true);
    expect(store.finishTask("t1", "failed", 7, {})).toBe(false);
    expect(store.getTask("t1")).toMatchObject({
      state: "completed",
      observation: { content: "ok" },
      finishedAtMs: 6,
    });
    expect(store.unfinishedTasks().map((t) => t.id)).toEqual(["t2"]);
    expect(store.queuedTasks("s").map((t) => t.id)).toEqual(["t2"]);
    expect(store.listTasks("s", 1).map((t) => t.id)).toEqual(["t2"]);
    expect(store.taskCounts("s")).toEqual({ queued: 1, running: 0, completed: 1, failed: 0, cancelled: 0 });
  });

  it("appends events with increasing ids and reads them after an id", () => {
    const store = openStore(driver);
    const a = store.appendEvent("s", "status", { status: "READY" }, 10);
    const b = store.appendEvent("s", "observation", { id: 1 }, 11);
    store.appendEvent("other", "status", {}, 12);
    expect(b.id).toBeGreaterThan(a.id);
    expect(typeof a.id).toBe("number");
    expect(store.eventsAfter("s", 0)).toEqual([a, b]);
    expect(store.eventsAfter("s", a.id)).toEqual([b]);
  });

  it("rolls a throwing transaction back", () => {
    const store = openStore(driver);
    expect(() =>
      store.transaction(() => {
        store.insertSession({ id: "gone", backend: "local", labels: {}, nowMs: 1 });
        throw new Error("abort");
      }),
    ).toThrow("abort");
    expect(store.getSession("gone")).toBeUndefined();
  });

  it("persists across reopening, with the database, -wal and -shm private (0600)", () => {
    const path = join(dir.path, `persist-${driver}.db`);
    const first = openStore(driver, path);
    first.insertSession({ id: "kept", backend: "local", labels: {}, nowMs: 1 });
    for (const file of [path, `${path}-wal`, `${path}-shm`])
      expect((statSync(file).mode & 0o777).toString(8), file).toBe("600");
    first.close();
    expect(openStore(driver, path).getSession("kept")).toMatchObject({ id: "kept" });
  });
});

describe.runIf(availableDrivers().length === 2)("both drivers, one after the other, on one file", () => {
  it("what one driver wrote the other reads and extends", () => {
    const path = join(dir.path, "shared.db");
    const a = openStore("node", path);
    a.insertSession({ id: "from-node", backend: "local", labels: {}, nowMs: 1 });
    a.close(); // one driver per file at a time in a process: each has its own SQLite and locks
    const b = openStore("better-sqlite3", path);
    expect(b.getSession("from-node")).toMatchObject({ id: "from-node" });
    b.insertTask({ id: "t", sessionId: "from-node", action: { action: "run" }, nowMs: 2 });
    b.close();
    expect(openStore("node", path).getTask("t")).toMatchObject({ seq: 1, state: "queued" });
  });
});
