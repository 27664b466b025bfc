import { randomBytes } from "node:crypto";
/**
 * agent-host: tasks per second through the HTTP API (submit + long-poll, over real HTTP on 127.0.0.1) vs direct
 * `runtime.run()` calls on the same local runtime (overhead ratio); pipelined submission; 100 concurrent
 * sessions (create -> ready -> one action -> delete) through the API vs direct provider calls (time, p99).
 * The host's SQLite file is real (WAL, in a temp dir). Isolation: BENCH_ISOLATION (default none).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cmdRun, parseAction, silentLogger } from "@agent-runtime/runtime-core";
import { AgentHost, parseHostConfig, startServer } from "../../apps/agent-host/src/index.ts";
import { hostApi, percentile, report, round, summarize } from "./harness.ts";

const isolation = process.env.BENCH_ISOLATION ?? "none";
const TASKS = Number(process.env.BENCH_TASKS ?? 200);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 100);
const dir = mkdtempSync(join(tmpdir(), "agent-host-bench-"));

const host = await AgentHost.open(
  parseHostConfig({
    runtime: { plugin: "local", options: { isolation, startupTimeoutMs: 60_000 } },
    storage: { path: join(dir, "host.db") },
    secrets: { enabled: false },
    sessions: { maxSessions: SESSIONS + 10, maxQueuedTasks: TASKS + 10 },
  }),
  { logger: silentLogger },
);
// The API is closed by default: the bench sends a token like any client.
const token = randomBytes(24).toString("hex");
const server = await startServer(host, { port: 0, env: {}, token });

const api = hostApi(server.url, token);

const action = { action: "run", args: { command: "true" } };
// The in-process host takes a parsed action (the API parses the wire form at its route).
const parsedAction = parseAction(action);
const rows: Record<string, unknown>[] = [];

try {
  // ---- sequential: one task at a time; direct, in-process host, and API samples interleaved so that load
  // drift on a shared machine hits all three alike.
  const runtime = await host.plugins.provider.create({ sessionId: "bench-direct" });
  await runtime.connect();
  const session = await api("POST", "/v1/sessions", { id: "bench-api" });
  await api("GET", `/v1/sessions/${session.id}?waitMs=60000`);
  const inProc = await host.createSession({ id: "bench-inproc" });
  await host.waitSession(inProc.id, 60_000);
  const direct: number[] = [];
  const viaHost: number[] = [];
  const viaApi: number[] = [];
  for (let i = 0; i < TASKS + 10; i++) {
    const t0 = performance.now();
    await runtime.run(cmdRun("true"));
    const t1 = performance.now();
    const hostTask = host.submitAction(inProc.id, parsedAction);
    const hostDone = await host.waitTask(hostTask.id, 30_000);
    if (hostDone.status !== "completed") throw new Error(`task ${hostTask.id} ended ${hostDone.status}`);
    const t2 = performance.now();
    const task = await api("POST", `/v1/sessions/${session.id}/actions`, action);
    const done = await api("GET", `/v1/tasks/${task.id}?waitMs=30000`);
    if (done.status !== "completed") throw new Error(`task ${task.id} ended ${done.status}`);
    const t3 = performance.now();
    if (i >= 10) {
      direct.push(t1 - t0);
      viaHost.push(t2 - t1);
      viaApi.push(t3 - t2);
    }
  }
  const d = summarize(direct);
  const h = summarize(viaHost);
  const a = summarize(viaApi);
  rows.push(
    {
      case: "sequential: direct runtime.run",
      tasksPerSec: round(1000 / d.mean, 1),
      p50Ms: round(d.p50),
      p99Ms: round(d.p99),
      ratio: 1,
    },
    {
      case: "sequential: host in-process (SQLite, no HTTP)",
      tasksPerSec: round(1000 / h.mean, 1),
      p50Ms: round(h.p50),
      p99Ms: round(h.p99),
      ratio: round(h.mean / d.mean, 2),
    },
    {
      case: "sequential: API submit + long-poll",
      tasksPerSec: round(1000 / a.mean, 1),
      p50Ms: round(a.p50),
      p99Ms: round(a.p99),
      ratio: round(a.mean / d.mean, 2),
    },
  );
  await host.deleteSession(inProc.id);

  // ---- pipelined: submit everything, then wait for the last one
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < TASKS; i++)
    ids.push((await api("POST", `/v1/sessions/${session.id}/actions`, action)).id);
  const last = await api("GET", `/v1/tasks/${ids.at(-1)}?waitMs=60000`);
  if (last.status !== "completed") throw new Error(`last pipelined task ended ${last.status}`);
  const pipelinedMs = performance.now() - t0;
  const directTotal = direct.reduce((s, x) => s + x, 0);
  rows.push({
    case: `pipelined: ${TASKS} submits, then wait`,
    tasksPerSec: round((TASKS * 1000) / pipelinedMs, 1),
    p50Ms: "",
    p99Ms: "",
    ratio: round(pipelinedMs / directTotal, 2),
  });
  await runtime.close();
  await api("DELETE", `/v1/sessions/${session.id}`);

  // ---- 100 concurrent sessions: create -> ready -> one action -> close
  const directSessions = async () => {
    const times: number[] = [];
    const start = performance.now();
    await Promise.all(
      Array.from({ length: SESSIONS }, async (_, i) => {
        const s0 = performance.now();
        const rt = await host.plugins.provider.create({ sessionId: `direct-${i}` });
        await rt.connect();
        await rt.run(cmdRun("echo hi"));
        times.push(performance.now() - s0);
        await rt.close();
      }),
    );
    return { totalMs: performance.now() - start, times };
  };
  const apiSessions = async () => {
    const times: number[] = [];
    const start = performance.now();
    await Promise.all(
      Array.from({ length: SESSIONS }, async () => {
        const s0 = performance.now();
        const s = await api("POST", "/v1/sessions", {});
        const ready = await api("GET", `/v1/sessions/${s.id}?waitMs=60000`);
        if (ready.status !== "ready") throw new Error(`session ${s.id} is ${ready.status}`);
        const task = await api("POST", `/v1/sessions/${s.id}/actions`, {
          action: "run",
          args: { command: "echo hi" },
        });
        const done = await api("GET", `/v1/tasks/${task.id}?waitMs=60000`);
        if (done.status !== "completed") throw new Error(`task ${task.id} ended ${done.status}`);
        times.push(performance.now() - s0);
        await api("DELETE", `/v1/sessions/${s.id}`);
      }),
    );
    return { totalMs: performance.now() - start, times };
  };
  const ds = await directSessions();
  const as = await apiSessions();
  rows.push(
    {
      case: `${SESSIONS} concurrent sessions: direct`,
      tasksPerSec: round((SESSIONS * 1000) / ds.totalMs, 1),
      p50Ms: round(percentile(ds.times, 50)),
      p99Ms: round(percentile(ds.times, 99)),
      ratio: 1,
    },
    {
      case: `${SESSIONS} concurrent sessions: API`,
      tasksPerSec: round((SESSIONS * 1000) / as.totalMs, 1),
      p50Ms: round(percentile(as.times, 50)),
      p99Ms: round(percentile(as.times, 99)),
      ratio: round(as.totalMs / ds.totalMs, 2),
    },
  );
  report("agent-host", rows);
  console.log(
    `isolation: ${isolation}; ratio = time through the API / time of direct runtime calls (lower is better, 1 = no overhead)`,
  );
} finally {
  await server.close();
  await host.close({ closeSessions: true });
  rmSync(dir, { recursive: true, force: true });
}
