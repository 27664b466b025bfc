/**
 * The echo round trip through agent-host (`POST /v1/sessions/:id/actions` with `echo hi`, then the long-poll for
 * its result, over real HTTP on 127.0.0.1) against the same round trip on a baseline build of agent-host, samples
 * interleaved so that load drift on a shared machine hits both alike. The ratio is this tree / baseline
 * (lower is better; 1 = as fast as the baseline).
 *
 * The baseline is another checkout of this repository, installed and built (`pnpm install && pnpm build`), given as
 * BENCH_BASELINE_REPO. Without it the bench compares the API round trip with direct `runtime.run()` calls on a
 * runtime of the same provider (the host's own overhead). Isolation: BENCH_ISOLATION (default none).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { cmdRun, type Runtime, silentLogger } from "@agent-runtime/runtime-core";
import * as current from "../../apps/agent-host/src/index.ts";
import { hostApi, report, round, summarize } from "./harness.ts";

const isolation = process.env.BENCH_ISOLATION ?? "none";
const ROUNDS = Number(process.env.BENCH_TASKS ?? 300);
const WARMUP = 20;
const baselineRepo = process.env.BENCH_BASELINE_REPO;

type HostModule = Pick<typeof current, "AgentHost" | "parseHostConfig" | "startServer">;

interface Target {
  name: string;
  roundTrip(): Promise<void>;
  close(): Promise<void>;
}

/** An agent-host from `mod` on a temp dir, its API on 127.0.0.1, one ready session. */
async function hostTarget(name: string, mod: HostModule): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), "echo-bench-"));
  const host = await mod.AgentHost.open(
    mod.parseHostConfig({
      runtime: { plugin: "local", options: { isolation, startupTimeoutMs: 60_000 } },
      storage: { path: join(dir, "host.db") },
      secrets: { enabled: false },
    }),
    { logger: silentLogger },
  );
  const token = randomBytes(24).toString("hex");
  const server = await mod.startServer(host, { port: 0, env: {}, token });
  const api = hostApi(server.url, token, name);

  const session = await api("POST", "/v1/sessions", {});
  const ready = await api("GET", `/v1/sessions/${session.id}?waitMs=60000`);
  if (ready.status !== "ready") throw new Error(`${name}: session is ${ready.status}`);
  const action = { action: "run", args: { command: "echo hi" } };
  return {
    name,
    async roundTrip() {
      const task = await api("POST", `/v1/sessions/${session.id}/actions`, action);
      const done = await api("GET", `/v1/tasks/${task.id}?waitMs=30000`);
      if (done.status !== "completed") throw new Error(`${name}: task ${task.id} ended ${done.status}`);
    },
    async close() {
      await server.close();
      await host.close({ closeSessions: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Direct `runtime.run(echo hi)` on a local runtime of the current tree (the no-host baseline). */
async function directTarget(host: current.AgentHost): Promise<Target & { runtime: Runtime }> {
  const runtime = await host.plugins.provider.create({ sessionId: "echo-direct" });
  await runtime.connect();
  return {
    name: "direct runtime.run (current)",
    runtime,
    async roundTrip() {
      await runtime.run(cmdRun("echo hi"));
    },
    close: () => runtime.close(),
  };
}

const targets: Target[] = [];
let owner: current.AgentHost | undefined;
try {
  let baseline: Target;
  if (baselineRepo) {
    const mod = (await import(
      pathToFileURL(join(baselineRepo, "apps/agent-host/dist/index.js")).href
    )) as HostModule;
    baseline = await hostTarget(`API echo round trip (baseline ${baselineRepo})`, mod);
  } else {
    owner = await current.AgentHost.open(
      current.parseHostConfig({
        runtime: { plugin: "local", options: { isolation, startupTimeoutMs: 60_000 } },
        storage: { path: ":memory:" },
        secrets: { enabled: false },
      }),
      { logger: silentLogger },
    );
    baseline = await directTarget(owner);
  }
  targets.push(baseline);
  const tree = await hostTarget("API echo round trip (this tree)", current);
  targets.push(tree);
  const samples = new Map<Target, number[]>(targets.map((t) => [t, []]));
  for (let i = 0; i < ROUNDS + WARMUP; i++) {
    // Alternate which goes first so neither always runs on a warmer machine.
    const order = i % 2 === 0 ? [baseline, tree] : [tree, baseline];
    for (const target of order) {
      const t0 = performance.now();
      await target.roundTrip();
      if (i >= WARMUP) samples.get(target)!.push(performance.now() - t0);
    }
  }
  const base = summarize(samples.get(baseline)!);
  report(
    "echo round trip",
    targets.map((t) => {
      const s = summarize(samples.get(t)!);
      return {
        case: t.name,
        p50Ms: round(s.p50),
        p99Ms: round(s.p99),
        meanMs: round(s.mean),
        ratio: round(s.mean / base.mean, 2),
      };
    }),
  );
  console.log(
    `isolation: ${isolation}; ${ROUNDS} rounds each, interleaved; ratio = mean time / the first row's (lower is better)`,
  );
} finally {
  for (const t of targets) await t.close().catch(() => {});
  await owner?.close({ closeSessions: true });
}
