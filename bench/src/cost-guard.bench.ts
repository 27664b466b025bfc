/**
 * cost-guard benchmark.
 * 1. Reserve + settle pairs per second on a file-backed ledger (WAL, synchronous=NORMAL), against a baseline
 *    of plain INSERT + UPDATE pairs through the same SQLite driver on the same kind of file (each statement its own
 *    transaction, as reserve and settle each are one). Target: >= 20,000 pairs/s. Measured one caller at a
 *    time (sync and awaited API) and with 64 concurrent callers, whose calls the guard group-commits; the
 *    baseline is also shown grouped 64 pairs per transaction, the best plain SQLite can do with the same batching.
 * 2. A report over 1,000,000 settled entries (by user, session, day, gpu), against a baseline full-table
 *    aggregate (`COUNT(*), SUM(...)`) over the same table.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildReport, costGuard, Ledger, type ReportGroup } from "@agent-runtime/cost-guard";
import { open } from "@agent-runtime/sqlite";
import { report, round, sample, summarize } from "./harness.js";

// Every figure here uses the driver `auto` picks (node:sqlite on Node 22.13+/24, else better-sqlite3); the
// two drivers side by side: sqlite-drivers.bench.ts.
const dir = mkdtempSync(join(tmpdir(), "cg-bench-"));
const PAIRS_PER_SAMPLE = 5_000;
const SAMPLES = 7;
const SPEC = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048, gpu: "T4" };

function pairsPerSecond(samplesMs: number[]): number {
  return PAIRS_PER_SAMPLE / (summarize(samplesMs).p50 / 1000);
}

// Baseline: plain INSERT + UPDATE pairs through the same driver, same pragmas, a similarly wide row.
const raw = open(join(dir, "baseline.db"));
const driver = raw.driver;
raw.pragma("journal_mode = WAL");
raw.pragma("synchronous = NORMAL");
raw.exec(`CREATE TABLE t (id TEXT PRIMARY KEY, status TEXT NOT NULL, user_id TEXT, spec_json TEXT NOT NULL,
  reserved INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, charged INTEGER, settled_at_ms INTEGER)`);
const insert = raw.prepare(
  "INSERT INTO t (id, status, user_id, spec_json, reserved, created_at_ms) VALUES (?, 'open', ?, ?, ?, ?)",
);
const update = raw.prepare("UPDATE t SET status = 'settled', charged = ?, settled_at_ms = ? WHERE id = ?");
let n = 0;
const baselineMs = await sample(
  () => {
    for (let i = 0; i < PAIRS_PER_SAMPLE; i++) {
      const id = `lease-${n++}-${Math.random().toString(36).slice(2)}`;
      insert.run(id, "alice", JSON.stringify(SPEC), 2_460_528_000, Date.now());
      update.run(1_000_000, Date.now(), id);
    }
  },
  SAMPLES,
  1,
);
const batchedBaselineMs = await sample(
  () => {
    raw.transaction(() => {
      for (let i = 0; i < PAIRS_PER_SAMPLE; i++) {
        const id = `lease-${n++}-${Math.random().toString(36).slice(2)}`;
        insert.run(id, "alice", JSON.stringify(SPEC), 2_460_528_000, Date.now());
        update.run(1_000_000, Date.now(), id);
        if (i % 64 === 63) {
          raw.exec("COMMIT; BEGIN IMMEDIATE");
        }
      }
    }, "immediate");
  },
  SAMPLES,
  1,
);
raw.close();

// cost-guard: reserve + settle through the guard on a file ledger with a global and a per-user daily budget.
const guard = costGuard({
  ledgerPath: join(dir, "guard.db"),
  enforceIntervalMs: 0,
  budgets: [
    { scope: "global", period: "monthly", limitUsd: 1e9 },
    { scope: "user", period: "daily", limitUsd: 1e9 },
  ],
});
const guardSyncMs = await sample(
  () => {
    for (let i = 0; i < PAIRS_PER_SAMPLE; i++) {
      const lease = guard.reserveSync({ spec: SPEC, scope: { userId: "alice" }, lifetimeMs: 600_000 });
      guard.settleSync(lease.leaseId);
    }
  },
  SAMPLES,
  1,
);
const guardAsyncMs = await sample(
  async () => {
    for (let i = 0; i < PAIRS_PER_SAMPLE; i++) {
      const lease = await guard.reserve({ spec: SPEC, scope: { userId: "alice" }, lifetimeMs: 600_000 });
      await guard.settle(lease.leaseId);
    }
  },
  SAMPLES,
  1,
);
const WORKERS = 64;
const guardConcurrentMs = await sample(
  async () => {
    const perWorker = PAIRS_PER_SAMPLE / WORKERS;
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        for (let i = 0; i < perWorker; i++) {
          const lease = await guard.reserve({
            spec: SPEC,
            scope: { userId: `user-${w}` },
            lifetimeMs: 600_000,
          });
          await guard.settle(lease.leaseId);
        }
      }),
    );
  },
  SAMPLES,
  1,
);
guard.close();

const base = pairsPerSecond(baselineMs);
const sync = pairsPerSecond(guardSyncMs);
const async = pairsPerSecond(guardAsyncMs);
const concurrent = pairsPerSecond(guardConcurrentMs);
const batchedBase = pairsPerSecond(batchedBaselineMs);
report("cost-guard-pairs", [
  { case: `baseline: ${driver} INSERT + UPDATE, autocommit`, pairsPerSec: Math.round(base), ratio: 1 },
  {
    case: "baseline: same, 64 pairs per transaction",
    pairsPerSec: Math.round(batchedBase),
    ratio: round(batchedBase / base),
  },
  { case: "cost-guard reserveSync + settleSync", pairsPerSec: Math.round(sync), ratio: round(sync / base) },
  {
    case: "cost-guard await reserve + settle, 1 caller",
    pairsPerSec: Math.round(async),
    ratio: round(async / base),
  },
  {
    case: `cost-guard await reserve + settle, ${WORKERS} callers`,
    pairsPerSec: Math.round(concurrent),
    ratio: round(concurrent / base),
  },
]);
console.log(
  `reserve+settle target >= 20,000/s on a file ledger: ${concurrent >= 20_000 ? "met" : "NOT met"} with ${WORKERS} ` +
    `concurrent callers (${Math.round(concurrent)}/s); one caller at a time: ${Math.round(sync)}/s ` +
    `(bounded by the autocommit baseline, ${Math.round(base)}/s on this machine)`,
);

// Report over 1,000,000 entries: seed settled leases in one transaction (not measured).
const ENTRIES = Number(process.env.CG_BENCH_ENTRIES ?? 1_000_000);
const reportPath = join(dir, "report.db");
const ledger = new Ledger({ path: reportPath });
const seed = ledger.db.prepare(
  `INSERT INTO leases (lease_id, status, provider, spec_json, gpu_type, gpu_count, user_id, session_id, tags_json,
     charge_rate_usd_per_s, worst_rate_usd_per_s, reserved_nusd, lifetime_ms, created_at_ms, day, month,
     heartbeat_at_ms, settled_at_ms, charged_nusd, duration_ms, settle_reason, price_version)
   VALUES (?, 'settled', 'modal', ?, ?, ?, ?, ?, NULL, 0.0002, 0.0007, 2000000000, 3600000, ?, ?, ?, ?, ?, ?, ?, 'closed', 'bench')`,
);
const t0 = Date.parse("2026-09-01T00:00:00Z");
const gpus = [null, null, "T4", "A10", "H100"];
const spec = JSON.stringify(SPEC);
const seedStart = performance.now();
ledger.db.transaction(() => {
  for (let i = 0; i < ENTRIES; i++) {
    const created = t0 + Math.floor((i / ENTRIES) * 30 * 86_400_000);
    const iso = new Date(created).toISOString();
    const gpu = gpus[i % gpus.length] ?? null;
    const durationMs = 60_000 + (i % 3_600) * 1000;
    seed.run(
      `cg-bench-${i}`,
      spec,
      gpu,
      gpu ? 1 : 0,
      `user-${i % 1000}`,
      `session-${i % 20_000}`,
      created,
      iso.slice(0, 10),
      iso.slice(0, 7),
      created + durationMs,
      created + durationMs,
      durationMs * 200,
      durationMs,
    );
  }
});
const seedMs = performance.now() - seedStart;

const scanMs = await sample(
  () =>
    ledger.db
      .prepare("SELECT COUNT(*) AS n, SUM(charged_nusd) AS s, SUM(duration_ms) AS d FROM leases")
      .get(),
  3,
  1,
);
const rows: Record<string, unknown>[] = [
  {
    case: "baseline: COUNT/SUM full scan",
    entries: ENTRIES,
    p50Ms: round(summarize(scanMs).p50, 1),
    ratio: 1,
  },
];
for (const by of ["user", "session", "day", "gpu"] as ReportGroup[]) {
  let groups = 0;
  const ms = await sample(
    () => {
      groups = buildReport(ledger, { by }).length;
    },
    3,
    1,
  );
  rows.push({
    case: `report --by ${by}`,
    entries: ENTRIES,
    groups,
    p50Ms: round(summarize(ms).p50, 1),
    ratio: round(summarize(ms).p50 / summarize(scanMs).p50),
  });
}
const sinceMs = t0 + 23 * 86_400_000;
const recentMs = await sample(() => buildReport(ledger, { by: "user", sinceMs }), 3, 1);
rows.push({
  case: "report --by user --since (last 7 of 30 days)",
  entries: ENTRIES,
  p50Ms: round(summarize(recentMs).p50, 1),
  ratio: round(summarize(recentMs).p50 / summarize(scanMs).p50),
});
report("cost-guard-report", rows);
console.log(
  `(seeding ${ENTRIES.toLocaleString()} entries took ${Math.round(seedMs)} ms, not measured above)`,
);
ledger.close();
rmSync(dir, { recursive: true, force: true });
