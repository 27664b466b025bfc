/**
 * SQLite drivers side by side: node:sqlite vs better-sqlite3 under the cost-guard ledger, in the same run.
 * 1. Reserve + settle pairs per second through the guard on a file ledger (WAL, synchronous=NORMAL, a global
 *    and a per-user budget): one caller (`reserveSync` + `settleSync`) and 64 concurrent awaited callers
 *    (group commit).
 * 2. The plain-SQLite floor under it: INSERT + UPDATE pairs, autocommit, through `@agent-runtime/sqlite`.
 * Samples of the drivers alternate (A B A B ...), so a noisy neighbour hits both alike. Ratios are against the
 * first driver measured (node:sqlite where available). Drivers that do not load on this Node are listed and
 * skipped: on Node 20 only better-sqlite3 runs; on Node 24 better-sqlite3 runs only when its addon loads
 * (see AGENT_RUNTIME_BETTER_SQLITE3_BINDING in packages/sqlite/README.md).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CostGuard, costGuard } from "@agent-runtime/cost-guard";
import {
  availableDrivers,
  type Database,
  open,
  type SqliteDriverName,
  unavailableDrivers,
} from "@agent-runtime/sqlite";
import { report, round, summarize } from "./harness.js";

const dir = mkdtempSync(join(tmpdir(), "sqlite-drivers-bench-"));
const PAIRS_PER_SAMPLE = 5_000;
const SAMPLES = 7;
const WARMUP = 1;
const WORKERS = 64;
const SPEC = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048, gpu: "T4" };
const drivers = availableDrivers();
for (const [name, reason] of Object.entries(unavailableDrivers())) console.log(`skipped ${name}: ${reason}`);

interface Subject {
  driver: SqliteDriverName;
  guard: CostGuard;
  raw: Database;
  insert: ReturnType<Database["prepare"]>;
  update: ReturnType<Database["prepare"]>;
  samples: { sync: number[]; concurrent: number[]; raw: number[] };
}

// One file per driver: a process must not open one file through both (each driver has its own SQLite).
const subjects: Subject[] = drivers.map((driver) => {
  const raw = open(join(dir, `raw-${driver}.db`), { driver });
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec(`CREATE TABLE t (id TEXT PRIMARY KEY, status TEXT NOT NULL, user_id TEXT, spec_json TEXT NOT NULL,
    reserved INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, charged INTEGER, settled_at_ms INTEGER)`);
  return {
    driver,
    guard: costGuard({
      ledgerPath: join(dir, `guard-${driver}.db`),
      sqliteDriver: driver,
      enforceIntervalMs: 0,
      budgets: [
        { scope: "global", period: "monthly", limitUsd: 1e9 },
        { scope: "user", period: "daily", limitUsd: 1e9 },
      ],
    }),
    raw,
    insert: raw.prepare(
      "INSERT INTO t (id, status, user_id, spec_json, reserved, created_at_ms) VALUES (?, 'open', ?, ?, ?, ?)",
    ),
    update: raw.prepare("UPDATE t SET status = 'settled', charged = ?, settled_at_ms = ? WHERE id = ?"),
    samples: { sync: [], concurrent: [], raw: [] },
  };
});

let n = 0;
async function time(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const runs = {
  sync: (s: Subject) => () => {
    for (let i = 0; i < PAIRS_PER_SAMPLE; i++) {
      const lease = s.guard.reserveSync({ spec: SPEC, scope: { userId: "alice" }, lifetimeMs: 600_000 });
      s.guard.settleSync(lease.leaseId);
    }
  },
  concurrent: (s: Subject) => () =>
    Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        for (let i = 0; i < PAIRS_PER_SAMPLE / WORKERS; i++) {
          const lease = await s.guard.reserve({
            spec: SPEC,
            scope: { userId: `user-${w}` },
            lifetimeMs: 600_000,
          });
          await s.guard.settle(lease.leaseId);
        }
      }),
    ),
  raw: (s: Subject) => () => {
    for (let i = 0; i < PAIRS_PER_SAMPLE; i++) {
      const id = `lease-${n++}-${Math.random().toString(36).slice(2)}`;
      s.insert.run(id, "alice", JSON.stringify(SPEC), 2_460_528_000, Date.now());
      s.update.run(1_000_000, Date.now(), id);
    }
  },
};

for (const kind of ["sync", "concurrent", "raw"] as const) {
  for (let round = 0; round < WARMUP + SAMPLES; round++) {
    // Alternate which driver goes first in each round as well.
    const order = round % 2 === 0 ? subjects : [...subjects].reverse();
    for (const s of order) {
      const ms = await time(runs[kind](s));
      if (round >= WARMUP) s.samples[kind].push(ms);
    }
  }
}

const pairsPerSec = (ms: number[]) => PAIRS_PER_SAMPLE / (summarize(ms).p50 / 1000);
const first = subjects[0];
const rows: Record<string, unknown>[] = [];
for (const [kind, label] of [
  ["sync", "cost-guard reserveSync + settleSync, 1 caller"],
  ["concurrent", `cost-guard await reserve + settle, ${WORKERS} callers`],
  ["raw", "plain INSERT + UPDATE, autocommit"],
] as const) {
  for (const s of subjects) {
    const value = pairsPerSec(s.samples[kind]);
    rows.push({
      case: `${label}: ${s.driver}`,
      pairsPerSec: Math.round(value),
      ratio: first ? round(value / pairsPerSec(first.samples[kind])) : 1,
    });
  }
}
report("sqlite-drivers", rows);
console.log(
  `Node ${process.versions.node}; drivers measured: ${drivers.join(", ")}; ratio = pairs/s against ${first?.driver} ` +
    "in the same run (p50 of 7 alternating samples of 5,000 pairs)",
);
for (const s of subjects) {
  s.guard.close();
  s.raw.close();
}
rmSync(dir, { recursive: true, force: true });
