/**
 * A child process for the multi-process and crash tests: `node --import tsx ledger-child.ts '<json config>'`.
 * It prints `ready`, waits for `go` on stdin, then runs one mode and prints one line per committed step with
 * `writeSync` (so a line on stdout means the step's transaction committed before the line was written).
 */
import { writeSync } from "node:fs";
import { costGuard, Ledger } from "../../src/index.js";

interface ChildConfig {
  mode: "reserve" | "churn" | "hang";
  /** SQLite driver, as the parent test uses. */
  driver: "node" | "better-sqlite3";
  ledgerPath: string;
  limitUsd?: number;
  count?: number;
  /** For `hang`: the ledger method after which the child blocks forever inside the transaction. */
  hangAfter?: "insertLease" | "settle";
  /** For `hang`: leases to reserve and settle normally first. */
  settleFirst?: number;
}

const SPEC = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 };
const config = JSON.parse(process.argv[2]!) as ChildConfig;
const say = (line: string) => writeSync(1, `${line}\n`);

if (config.mode === "hang") {
  const method = config.hangAfter!;
  const original = Ledger.prototype[method] as (...args: unknown[]) => unknown;
  let armed = false;
  (Ledger.prototype as unknown as Record<string, unknown>)[method] = function (
    this: Ledger,
    ...args: unknown[]
  ) {
    const result = original.apply(this, args);
    if (armed) {
      say(
        `in-tx ${String(args[0] && typeof args[0] === "object" ? (args[0] as { leaseId: string }).leaseId : args[0])}`,
      );
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // block forever inside the transaction
    }
    return result;
  };
  const guard = costGuard({
    ledgerPath: config.ledgerPath,
    sqliteDriver: config.driver,
    enforceIntervalMs: 0,
    budgets: config.limitUsd ? [{ limitUsd: config.limitUsd }] : [],
  });
  const open: string[] = [];
  for (let i = 0; i < (config.settleFirst ?? 0) + 1; i++)
    open.push(guard.reserveSync({ spec: SPEC, lifetimeMs: 3_600_000 }).leaseId);
  for (const id of open.slice(0, config.settleFirst ?? 0)) {
    const s = guard.settleSync(id, { costUsd: 0.01 });
    say(`settled ${id} ${s.chargedUsd}`);
  }
  armed = true;
  if (method === "settle") guard.settleSync(open.at(-1)!, { costUsd: 0.01 });
  else guard.reserveSync({ spec: SPEC, lifetimeMs: 3_600_000 });
  say("not reached");
} else {
  const guard = costGuard({
    ledgerPath: config.ledgerPath,
    sqliteDriver: config.driver,
    enforceIntervalMs: 0,
    budgets: config.limitUsd ? [{ limitUsd: config.limitUsd }] : [],
  });
  say("ready");
  process.stdin.once("data", () => {
    if (config.mode === "reserve") {
      let ok = 0;
      let refused = 0;
      for (let i = 0; i < (config.count ?? 0); i++) {
        try {
          guard.reserveSync({ spec: SPEC, scope: { userId: `pid-${process.pid}` }, lifetimeMs: 3_600_000 });
          ok++;
        } catch (err) {
          if ((err as { code?: string }).code !== "BUDGET_EXCEEDED") throw err;
          refused++;
        }
      }
      say(JSON.stringify({ ok, refused }));
      guard.close();
      process.exit(0);
    }
    // churn: reserve, activate and settle until killed.
    for (let i = 0; ; i++) {
      const lease = guard.reserveSync({ spec: SPEC, lifetimeMs: 3_600_000 });
      void guard.activate(lease.leaseId, `sb-${process.pid}-${i}`);
      const s = guard.settleSync(lease.leaseId, { costUsd: 0.000001 * ((i % 997) + 1) });
      say(`settled ${lease.leaseId} ${s.chargedUsd}`);
    }
  });
}
