/**
 * runtime-docker (socket mode, image cached) against runtime-local (isolation "none", and "bubblewrap" where it
 * works), measured in the same run with rounds interleaved across backends so that load drift on a shared machine
 * hits all alike:
 * - cold start: `create()` + `connect()` to ready;
 * - warm-pool acquire: `create()` from a pool of size 1 (refilled between rounds, not timed) + `connect()` + the
 *   first action (`echo hi`);
 * - echo round trip: `runCommand("echo hi")` on a connected runtime.
 * Both run with their default network, egress: the engine's bridge for Docker, the slirp4netns NAT for bubblewrap.
 * Each figure is reported as p50 and p90 in ms and as a ratio to runtime-local (isolation none, and bubblewrap).
 *
 * The engine is AGENT_RUNTIME_DOCKER_HOST, else DOCKER_HOST, else the usual sockets; the image's base is
 * AGENT_RUNTIME_TEST_BASE_IMAGE (default: the clean Debian base `.ci/engine` makes). Without an engine the bench
 * says why and measures nothing. Rounds: BENCH_DOCKER_ROUNDS (default 10), echo samples: BENCH_DOCKER_ECHOES
 * (default 200).
 */
import { engineForTests } from "@agent-runtime/docker-engine/testing";
import type { Runtime, RuntimeProvider } from "@agent-runtime/runtime-core";
import { dockerRuntime } from "@agent-runtime/runtime-docker";
import { localRuntime } from "@agent-runtime/runtime-local";
import { percentile, report, round } from "./harness.ts";

const ROUNDS = Number(process.env.BENCH_DOCKER_ROUNDS ?? 10);
const ECHOES = Number(process.env.BENCH_DOCKER_ECHOES ?? 200);

interface Target {
  name: string;
  /** Creates providers of this backend (`poolSize` 0: no pool). */
  provider(poolSize: number): RuntimeProvider;
  /** Ready sandboxes in the provider's pool. */
  poolReady(provider: RuntimeProvider): number;
}

const found = await engineForTests();
if (found.skip !== undefined) {
  console.log(`docker.bench: skipped: ${found.skip}`);
  process.exit(0);
}
const engineAddress = found.engine.address;

const targets: Target[] = [
  {
    name: "docker (socket)",
    provider: (size) =>
      dockerRuntime({ engine: engineAddress, baseImage: found.baseImage, connect: "socket", pool: { size } }),
    poolReady: (p) => (p as ReturnType<typeof dockerRuntime>).poolReady,
  },
  {
    name: "local (none)",
    provider: (size) => localRuntime({ isolation: "none", pool: { size } }),
    poolReady: (p) => (p as ReturnType<typeof localRuntime>).poolReady,
  },
];
try {
  await localRuntime({ isolation: "bubblewrap" }).close();
  targets.push({
    name: "local (bubblewrap)",
    provider: (size) => localRuntime({ isolation: "bubblewrap", pool: { size } }),
    poolReady: (p) => (p as ReturnType<typeof localRuntime>).poolReady,
  });
} catch (err) {
  console.log(`docker.bench: no bubblewrap row: ${(err as Error).message.split("\n")[0]}`);
}

type Samples = Map<string, number[]>;
const newSamples = (): Samples => new Map(targets.map((t) => [t.name, []]));
const cold = newSamples();
const acquire = newSamples();
const echo = newSamples();

/** Time of `fn` in ms. */
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

// Cold start: a fresh provider-less create + connect per round (one warm-up each: the image lookup, first spawn).
const plain = new Map(targets.map((t) => [t.name, t.provider(0)]));
for (let round = -1; round < ROUNDS; round++) {
  for (const t of targets) {
    let runtime: Runtime | undefined;
    const ms = await timed(async () => {
      runtime = await plain.get(t.name)!.create({ sessionId: `bench-cold-${round + 1}` });
      await runtime.connect();
    });
    if (round >= 0) cold.get(t.name)!.push(ms);
    await runtime?.close();
  }
}

// Echo round trip on one connected runtime per backend, in batches of 10 alternating between backends.
const connected = new Map<string, Runtime>();
for (const t of targets) {
  const runtime = await plain.get(t.name)!.create({ sessionId: "bench-echo" });
  await runtime.connect();
  for (let i = 0; i < 10; i++) await runtime.runCommand("echo hi");
  connected.set(t.name, runtime);
}
for (let done = 0; done < ECHOES; done += 10) {
  for (const t of targets) {
    const runtime = connected.get(t.name)!;
    for (let i = 0; i < 10; i++) {
      const ms = await timed(async () => {
        const obs = await runtime.runCommand("echo hi");
        if (!obs.content.includes("hi"))
          throw new Error(`${t.name}: echo gave ${JSON.stringify(obs.content)}`);
      });
      echo.get(t.name)!.push(ms);
    }
  }
}
for (const runtime of connected.values()) await runtime.close();
for (const p of plain.values()) await p.close();

// Warm-pool acquire: pool of 1, wait until refilled (not timed), then create + connect + first action.
const pools = new Map(targets.map((t) => [t.name, t.provider(1)]));
for (let round = -1; round < ROUNDS; round++) {
  for (const t of targets) {
    const pool = pools.get(t.name)!;
    const deadline = Date.now() + 120_000;
    while (t.poolReady(pool) < 1) {
      if (Date.now() > deadline) throw new Error(`${t.name}: the pool did not refill within 120 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    let runtime: Runtime | undefined;
    const ms = await timed(async () => {
      runtime = await pool.create({ sessionId: `bench-pool-${round + 1}` });
      await runtime.connect();
      await runtime.runCommand("echo hi");
    });
    if (round >= 0) acquire.get(t.name)!.push(ms);
    await runtime?.close();
  }
}
for (const p of pools.values()) await p.close();

const rows: Record<string, unknown>[] = [];
const baselines = targets.filter((t) => t.name.startsWith("local"));
for (const [what, samples] of [
  ["cold start (create+connect)", cold],
  ["warm-pool acquire (+ first echo)", acquire],
  ["echo round trip (runCommand)", echo],
] as const) {
  for (const t of targets) {
    const s = samples.get(t.name)!;
    const row: Record<string, unknown> = {
      case: what,
      backend: t.name,
      n: s.length,
      p50Ms: round(percentile(s, 50), 2),
      p90Ms: round(percentile(s, 90), 2),
    };
    for (const b of baselines) {
      const base = samples.get(b.name)!;
      row[`p50 vs ${b.name}`] = round(percentile(s, 50) / percentile(base, 50), 2);
      row[`p90 vs ${b.name}`] = round(percentile(s, 90) / percentile(base, 90), 2);
    }
    rows.push(row);
  }
}
report("docker", rows);
