/**
 * runtime-local: cold start (connect -> ready) p50 vs spawning a bare Node HTTP server; warm-pool acquire p50;
 * 100 concurrent sessions x 20 actions (throughput, p99) vs `bash -c` spawns; RSS of an idle sandbox.
 * Targets (issue): cold start <= 150 ms, acquire <= 5 ms, idle RSS <= 45 MB.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { localRuntime } from "@agent-runtime/runtime-local";
import { percentile, report, round, summarize } from "./harness.ts";

const isolation = (process.env.BENCH_ISOLATION as "none" | "bubblewrap" | undefined) ?? "none";

function spawnNodeServer(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["-e", "require('http').createServer().listen(0,'127.0.0.1',()=>{console.log('up');process.exit(0)})"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    child.stdout.once("data", () => resolve());
    child.once("error", reject);
  });
}

function bashEcho(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", "echo hi"], {
      stdio: ["ignore", "pipe", "ignore"],
      env: { PATH: process.env.PATH ?? "", SHLVL: "1", HOME: "/tmp" },
    });
    child.stdout.resume();
    child.once("exit", () => resolve());
    child.once("error", reject);
  });
}

/** RSS in MB of `pid` and all its descendants. */
function treeRssMb(root: number): number {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      rss.set(Number(name), kb);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // process ended while reading
    }
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    total += rss.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total / 1024;
}

const rows: Record<string, unknown>[] = [];

// Cold start vs a bare Node server spawn.
const baseStart: number[] = [];
for (let i = 0; i < 15; i++) {
  const t0 = performance.now();
  await spawnNodeServer();
  baseStart.push(performance.now() - t0);
}
const provider = localRuntime({ isolation });
const cold: number[] = [];
let idleRss = 0;
for (let i = 0; i < 15; i++) {
  const runtime = await provider.create({ sessionId: `cold-${i}` });
  const t0 = performance.now();
  await runtime.connect();
  cold.push(performance.now() - t0);
  if (i === 14) {
    await new Promise((r) => setTimeout(r, 500));
    idleRss = treeRssMb(runtime.pid!);
  }
  await runtime.close();
}
rows.push({ case: "baseline: spawn bare node http server", p50Ms: round(percentile(baseStart, 50), 1) });
rows.push({
  case: `cold start connect->ready (${isolation})`,
  p50Ms: round(percentile(cold, 50), 1),
  ratioVsBaseline: round(percentile(cold, 50) / percentile(baseStart, 50), 2),
  target: "<= 150 ms",
});
rows.push({ case: "idle sandbox RSS (server + shell)", mb: round(idleRss, 1), target: "<= 45 MB" });

// Pool acquire.
const pooled = localRuntime({ isolation, pool: { size: 4 } });
const acquire: number[] = [];
for (let i = 0; i < 12; i++) {
  while (pooled.poolReady < 1) await new Promise((r) => setTimeout(r, 5));
  const t0 = performance.now();
  const runtime = await pooled.create({ sessionId: `pool-${i}` });
  await runtime.connect();
  acquire.push(performance.now() - t0);
  void runtime.close();
}
await pooled.close();
rows.push({
  case: "warm pool acquire (create+connect)",
  p50Ms: round(percentile(acquire, 50), 3),
  target: "<= 5 ms",
});

// 100 concurrent sessions x 20 actions.
const sessions = 100;
const actions = 20;
const runtimes = await Promise.all(
  Array.from({ length: sessions }, (_, i) => provider.create({ sessionId: `load-${i}` })),
);
await Promise.all(runtimes.map((r) => r.connect()));
const latencies: number[] = [];
const t0 = performance.now();
await Promise.all(
  runtimes.map(async (r) => {
    for (let i = 0; i < actions; i++) {
      const s = performance.now();
      await r.runCommand(`echo ${i}`);
      latencies.push(performance.now() - s);
    }
  }),
);
const elapsed = (performance.now() - t0) / 1000;
await Promise.all(runtimes.map((r) => r.close()));
const bashLat: number[] = [];
const b0 = performance.now();
await Promise.all(
  Array.from({ length: sessions }, async () => {
    for (let i = 0; i < actions; i++) {
      const s = performance.now();
      await bashEcho();
      bashLat.push(performance.now() - s);
    }
  }),
);
const bashElapsed = (performance.now() - b0) / 1000;
const s = summarize(latencies);
rows.push({
  case: "baseline: 100 x 20 `bash -c echo` spawns",
  actionsPerSec: round((sessions * actions) / bashElapsed, 0),
  p99Ms: round(percentile(bashLat, 99), 1),
});
rows.push({
  case: "100 sessions x 20 actions",
  actionsPerSec: round((sessions * actions) / elapsed, 0),
  p50Ms: round(s.p50, 1),
  p99Ms: round(s.p99, 1),
  throughputVsBaseline: round(bashElapsed / elapsed, 2),
});
await provider.close();
report("runtime-local", rows);
