import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { silentLogger } from "@agent-runtime/runtime-core";
import { availableDrivers, type SqliteDriverName } from "@agent-runtime/sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { costGuard } from "../src/index.js";
import { Ledger, toNanoUsd } from "../src/ledger.js";
import { tempDir } from "./temp-dir.js";

// Every test runs on each SQLite driver this Node has (the children use the same driver as the parent).
const DRIVERS = availableDrivers();

const packageDir = join(import.meta.dirname, "..");
const childScript = join(import.meta.dirname, "support", "ledger-child.ts");
const SPEC = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 };
const LEASE_NANO = Math.ceil((0.00003942 + 2 * 0.00000667) * 3600 * 1e9);

interface Child {
  proc: ChildProcess;
  lines: string[];
  waitFor(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: Child[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill("SIGKILL");
    await c.exited;
  }
});

function startChild(config: Record<string, unknown>): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", childScript, JSON.stringify(config)], {
    cwd: packageDir,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, SHLVL: "1" },
  });
  const lines: string[] = [];
  const waiters: { predicate: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) {
      if (w.predicate(line)) w.resolve(line);
      else waiters.push(w);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const child: Child = {
    proc,
    lines,
    exited,
    waitFor(predicate, timeoutMs = 15_000) {
      const found = lines.find(predicate);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`child did not print the expected line; stderr:\n${stderr}`)),
          timeoutMs,
        );
        const done = (line: string) => {
          clearTimeout(timer);
          resolve(line);
        };
        waiters.push({ predicate, resolve: done });
        void exited.then(() =>
          setTimeout(() => reject(new Error(`child exited early; stderr:\n${stderr}`)), 50),
        );
      });
    },
  };
  children.push(child);
  return child;
}

function tempLedger(): string {
  return join(tempDir("cg-mp-"), "cost.db");
}

/** Every counter equals the same total recomputed from the leases (nano-USD, exact). */
function expectCountersConsistent(
  ledgerPath: string,
  driver: SqliteDriverName,
): { spent: number; reserved: number } {
  const ledger = new Ledger({ path: ledgerPath, mustExist: true, driver });
  try {
    const counter = ledger.getCounter("global", "total");
    const [agg] = ledger.aggregate({ kind: "global" }, "total");
    expect(counter).toEqual({
      spentNanoUsd: agg?.spentNanoUsd ?? 0,
      reservedNanoUsd: agg?.reservedNanoUsd ?? 0,
    });
    return { spent: counter.spentNanoUsd, reserved: counter.reservedNanoUsd };
  } finally {
    ledger.close();
  }
}

/**
 * Starts a child that hangs inside a ledger transaction (after `hangAfter`, once `settleFirst` leases settled),
 * kills it with SIGKILL there, and returns it, the lease of the hung transaction and how it exited.
 */
async function killedInTransaction(config: Record<string, unknown>) {
  const child = startChild({ mode: "hang", ...config });
  const inTx = await child.waitFor((l) => l.startsWith("in-tx "));
  child.proc.kill("SIGKILL");
  const exit = await child.exited;
  return { child, hungLease: inTx.split(" ")[1]!, exit };
}

describe.each(DRIVERS)("driver %s", (driver) => {
  describe("one file ledger shared by several processes", () => {
    it("3 processes making 1,200 concurrent reservations never exceed one budget", async () => {
      const ledgerPath = tempLedger();
      const limitUsd = (LEASE_NANO * 250.5) / 1e9;
      const procs = [0, 1, 2].map(() =>
        startChild({ driver, mode: "reserve", ledgerPath, limitUsd, count: 400 }),
      );
      await Promise.all(procs.map((c) => c.waitFor((l) => l === "ready")));
      for (const c of procs) c.proc.stdin!.write("go\n");
      const results = await Promise.all(
        procs.map(
          async (c) =>
            JSON.parse(await c.waitFor((l) => l.startsWith("{"), 30_000)) as { ok: number; refused: number },
        ),
      );
      expect(results.reduce((n, r) => n + r.ok, 0)).toBe(250);
      expect(results.reduce((n, r) => n + r.refused, 0)).toBe(950);
      expect(results.filter((r) => r.ok > 0).length).toBeGreaterThanOrEqual(2); // they really competed
      const { reserved } = expectCountersConsistent(ledgerPath, driver);
      expect(reserved).toBe(250 * LEASE_NANO);
      expect(reserved).toBeLessThanOrEqual(toNanoUsd(limitUsd));
    }, 60_000);
  });

  describe("crash safety", () => {
    it("a process killed inside a settle transaction loses no settled entry and never charges twice", async () => {
      const ledgerPath = tempLedger();
      const { child, hungLease, exit } = await killedInTransaction({
        driver,
        ledgerPath,
        hangAfter: "settle",
        settleFirst: 3,
        limitUsd: 100,
      });
      expect(exit.signal).toBe("SIGKILL");
      const settledBefore = child.lines.filter((l) => l.startsWith("settled ")).map((l) => l.split(" ")[1]!);
      expect(settledBefore).toHaveLength(3);

      const guard = costGuard(
        { ledgerPath, sqliteDriver: driver, enforceIntervalMs: 0, budgets: [{ limitUsd: 100 }] },
        { logger: silentLogger },
      );
      try {
        for (const id of settledBefore)
          expect(guard.getLease(id)).toMatchObject({ status: "settled", chargedUsd: 0.01 });
        expect(guard.getLease(hungLease)!.status).toBe("reserved"); // the half-done settle was rolled back
        expect(expectCountersConsistent(ledgerPath, driver)).toEqual({
          spent: 3 * toNanoUsd(0.01),
          reserved: LEASE_NANO,
        });
        const first = await guard.settle(hungLease, { costUsd: 0.01 });
        const again = await guard.settle(hungLease, { costUsd: 0.01 });
        expect([first.alreadySettled, again.alreadySettled]).toEqual([false, true]);
        expect(expectCountersConsistent(ledgerPath, driver)).toEqual({
          spent: 4 * toNanoUsd(0.01),
          reserved: 0,
        });
      } finally {
        guard.close();
      }
    }, 30_000);

    it("a process killed inside a reserve transaction leaves no lease and no reservation behind", async () => {
      const ledgerPath = tempLedger();
      const { hungLease } = await killedInTransaction({
        driver,
        ledgerPath,
        hangAfter: "insertLease",
        settleFirst: 1,
        limitUsd: 100,
      });
      const ledger = new Ledger({ path: ledgerPath, mustExist: true, driver });
      try {
        expect(ledger.getLease(hungLease)).toBeUndefined();
        expect(
          ledger.db.prepare("SELECT status, COUNT(*) AS n FROM leases GROUP BY status ORDER BY status").all(),
        ).toEqual([
          { status: "reserved", n: 1 }, // the one reserved before the hang and never settled
          { status: "settled", n: 1 },
        ]);
      } finally {
        ledger.close();
      }
      expect(expectCountersConsistent(ledgerPath, driver)).toEqual({
        spent: toNanoUsd(0.01),
        reserved: LEASE_NANO,
      });
    }, 30_000);

    it("processes killed at random points of a reserve/settle loop keep every committed entry, exactly once", async () => {
      const ledgerPath = tempLedger();
      const committed = new Map<string, number>();
      for (let round = 0; round < 3; round++) {
        const child = startChild({ driver, mode: "churn", ledgerPath, limitUsd: 1e6 });
        await child.waitFor((l) => l === "ready");
        child.proc.stdin!.write("go\n");
        const target = 150 + Math.floor(Math.random() * 150);
        await child.waitFor(() => child.lines.length > target, 30_000);
        child.proc.kill("SIGKILL");
        await child.exited;
        for (const line of child.lines.filter((l) => l.startsWith("settled "))) {
          const [, id, charged] = line.split(" ");
          committed.set(id!, Number(charged));
        }
      }
      const ledger = new Ledger({ path: ledgerPath, mustExist: true, driver });
      try {
        for (const [id, charged] of committed)
          expect(ledger.getLease(id)).toMatchObject({ status: "settled", chargedUsd: charged });
        const rows = ledger.db
          .prepare<[], { status: string; n: number }>(
            "SELECT status, COUNT(*) AS n FROM leases GROUP BY status",
          )
          .all();
        const settled = rows.find((r) => r.status === "settled")?.n ?? 0;
        expect(settled).toBeGreaterThanOrEqual(committed.size);
        expect(settled - committed.size).toBeLessThanOrEqual(3); // committed, killed before printing
        expect(rows.filter((r) => r.status !== "settled").reduce((n, r) => n + r.n, 0)).toBeLessThanOrEqual(
          3,
        );
      } finally {
        ledger.close();
      }
      const { spent } = expectCountersConsistent(ledgerPath, driver);
      // Settle what the killed processes left open, twice: each is charged once.
      const guard = costGuard(
        { ledgerPath, sqliteDriver: driver, enforceIntervalMs: 0, budgets: [{ limitUsd: 1e6 }] },
        { logger: silentLogger },
      );
      try {
        for (const lease of guard.openLeases()) {
          await guard.settle(lease.leaseId, { costUsd: 0.5 });
          expect((await guard.settle(lease.leaseId, { costUsd: 0.5 })).alreadySettled).toBe(true);
        }
        expect(guard.openLeases()).toEqual([]);
      } finally {
        guard.close();
      }
      const after = expectCountersConsistent(ledgerPath, driver);
      expect(after.reserved).toBe(0);
      expect((after.spent - spent) % toNanoUsd(0.5)).toBe(0);
    }, 60_000);
  });

  describe("the guard reopens what a crashed process wrote", () => {
    it("keeps reservations made by another process in the budget", async () => {
      const ledgerPath = tempLedger();
      await killedInTransaction({ driver, ledgerPath, hangAfter: "settle", settleFirst: 0, limitUsd: 0.3 });
      const guard = costGuard(
        { ledgerPath, sqliteDriver: driver, enforceIntervalMs: 0, budgets: [{ limitUsd: 0.3 }] },
        { logger: silentLogger },
      );
      try {
        await expect(guard.reserve({ spec: SPEC, lifetimeMs: 3_600_000 })).rejects.toMatchObject({
          code: "BUDGET_EXCEEDED",
        });
      } finally {
        guard.close();
      }
    }, 30_000);
  });
});
