/**
 * The ledger never blocks the host's event loop: while another real process holds the ledger's SQLite write
 * lock, the guard's async methods wait on timers (busy timeout 0, retried with backoff), and a heartbeat on the
 * event loop keeps ticking. Also: the files the ledger creates are private.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type RuntimeError, silentLogger } from "@agent-runtime/runtime-core";
import { availableDrivers, type SqliteDriverName } from "@agent-runtime/sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { type CostGuard, costGuard } from "../src/index.js";
import { tempDir } from "./temp-dir.js";

const packageDir = join(import.meta.dirname, "..");
const holderScript = join(import.meta.dirname, "support", "lock-holder.ts");
const SPEC = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 };
const HOUR = 3_600_000;

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

function openGuard(ledgerPath: string, driver: SqliteDriverName, busyTimeoutMs?: number): CostGuard {
  const g = costGuard(
    {
      ledgerPath,
      sqliteDriver: driver,
      enforceIntervalMs: 0,
      budgets: [{ limitUsd: 100 }],
      ...(busyTimeoutMs ? { busyTimeoutMs } : {}),
    },
    { logger: silentLogger },
  );
  cleanup.push(() => g.close());
  return g;
}

/** Starts a process that takes the ledger's write lock; resolves once it holds it. */
async function holdLock(
  ledgerPath: string,
  holdMs: number,
  mode: "immediate" | "exclusive",
  driver: SqliteDriverName,
): Promise<{ proc: ChildProcess; released: Promise<number> }> {
  const args = [holderScript, ledgerPath, String(holdMs), mode, driver];
  const proc = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd: packageDir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  cleanup.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const lines = createInterface({ input: proc.stdout! });
  let onReleased: (at: number) => void = () => {};
  const released = new Promise<number>((resolve) => {
    onReleased = resolve;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`lock holder did not start; stderr:\n${stderr}`)),
      15_000,
    );
    lines.on("line", (line) => {
      if (line === "locked") {
        clearTimeout(timer);
        resolve();
      }
      if (line === "released") onReleased(performance.now());
    });
    proc.once("exit", (code) => {
      if (code !== 0) reject(new Error(`lock holder exited with ${code}; stderr:\n${stderr}`));
    });
  });
  return { proc, released };
}

/** Measures the largest gap between ticks of a 5 ms interval on this event loop. */
function heartbeat(): { stop(): number } {
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(maxGap, performance.now() - last);
    },
  };
}

// Each test runs on every SQLite driver this Node has; the lock holder uses the same driver.
describe.each(availableDrivers())("driver %s", (driver) => {
  describe("another process holds the ledger's write lock", () => {
    it("reserve and settle wait for it without blocking the event loop, and complete once it is released", async () => {
      const ledgerPath = join(tempDir("cg-lock-"), "cost.db");
      const g = openGuard(ledgerPath, driver);
      const first = await g.reserve({ spec: SPEC, lifetimeMs: HOUR });

      const { released } = await holdLock(ledgerPath, 2000, "exclusive", driver);
      const beat = heartbeat();
      const t0 = performance.now();
      // Reads do not wait for a writer (WAL): waiting would take the lock's 2 s.
      expect(g.getLease(first.leaseId)?.status).toBe("reserved");
      expect(performance.now() - t0).toBeLessThan(1000);
      const [second, settlement] = await Promise.all([
        g.reserve({ spec: SPEC, scope: { sessionId: "s2" }, lifetimeMs: HOUR }),
        g.settle(first.leaseId, { costUsd: 0.01 }),
      ]);
      const doneAt = performance.now();
      const maxGapMs = beat.stop();

      // A blocking wait would stall the loop for the lock's 2 s; a busy machine stalls it for tens of ms.
      expect(maxGapMs).toBeLessThan(1000);
      expect(doneAt - t0).toBeGreaterThan(1500); // it really waited for the lock
      expect(doneAt - (await released)).toBeLessThan(1000);
      expect(settlement).toMatchObject({ alreadySettled: false, chargedUsd: 0.01 });
      expect(g.getLease(second.leaseId)).toMatchObject({ status: "reserved", scope: { sessionId: "s2" } });
    }, 30_000);

    it("fails with UNAVAILABLE after busyTimeoutMs, still without blocking, and works again after", async () => {
      const ledgerPath = join(tempDir("cg-lock-"), "cost.db");
      const g = openGuard(ledgerPath, driver, 1000);
      const { released } = await holdLock(ledgerPath, 4000, "immediate", driver);
      const beat = heartbeat();
      const t0 = performance.now();
      const err = await g.reserve({ spec: SPEC, lifetimeMs: HOUR }).then(
        () => undefined,
        (e: unknown) => e as RuntimeError,
      );
      const elapsed = performance.now() - t0;
      // A blocking wait would stall the loop for the whole busyTimeoutMs (1 s).
      expect(beat.stop()).toBeLessThan(500);
      expect(err?.code).toBe("UNAVAILABLE");
      expect(err?.message).toContain("stayed locked by another process for busyTimeoutMs (1000 ms)");
      expect(err?.details).toMatchObject({ reason: "locked", busyTimeoutMs: 1000 });
      expect(elapsed).toBeGreaterThanOrEqual(990);
      // Gave up at busyTimeoutMs, not when the lock was released (4 s).
      expect(elapsed).toBeLessThan(3000);
      expect(g.openLeases()).toEqual([]); // nothing was written
      await released;
      const lease = await g.reserve({ spec: SPEC, lifetimeMs: HOUR });
      expect(g.getLease(lease.leaseId)?.status).toBe("reserved");
    }, 30_000);

    it("close() fails operations still waiting for the lock at once", async () => {
      const ledgerPath = join(tempDir("cg-lock-"), "cost.db");
      const g = openGuard(ledgerPath, driver);
      await holdLock(ledgerPath, 2000, "immediate", driver);
      const pending = g.reserve({ spec: SPEC, lifetimeMs: HOUR });
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      g.close();
      await expect(pending).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
      // Not when the lock is released (2 s later).
      expect(performance.now() - t0).toBeLessThan(1000);
    }, 30_000);
  });

  describe("ledger files are private", () => {
    it("creates the db, -wal and -shm 0600 and, when asked to, its directory (and parents) 0700", async () => {
      const root = tempDir("cg-mode-");
      const dir = join(root, "state", "cost");
      const ledgerPath = join(dir, "cost.db");
      const g = costGuard(
        { ledgerPath, sqliteDriver: driver, createLedgerDirectory: true, enforceIntervalMs: 0 },
        { logger: silentLogger },
      );
      cleanup.push(() => g.close());
      await g.reserve({ spec: SPEC, lifetimeMs: HOUR });
      for (const file of [ledgerPath, `${ledgerPath}-wal`, `${ledgerPath}-shm`]) {
        expect((statSync(file).mode & 0o777).toString(8), file).toBe("600");
      }
      expect((statSync(dir).mode & 0o777).toString(8)).toBe("700");
      expect((statSync(join(root, "state")).mode & 0o777).toString(8)).toBe("700");
    });

    it("without createLedgerDirectory a missing directory is NOT_FOUND and nothing is created", () => {
      const root = tempDir("cg-mode-");
      const err = (() => {
        try {
          costGuard({
            ledgerPath: join(root, "missing", "cost.db"),
            sqliteDriver: driver,
            enforceIntervalMs: 0,
          });
        } catch (e) {
          return e as RuntimeError;
        }
      })();
      expect(err?.code).toBe("NOT_FOUND");
      expect(err?.message).toContain("createLedgerDirectory");
      expect(() => statSync(join(root, "missing"))).toThrow();
    });
  });
});
