/**
 * What the hardened bubblewrap profile costs: cold start (connect -> ready) and `echo hi` round trip p50 for
 * isolation "none" (the same-run baseline), bubblewrap with network "none", with "egress" (slirp4netns) and
 * with a pids cgroup (maxProcesses). Variants are interleaved round by round, so load drift hits all alike.
 *
 * To compare against an earlier runtime-local, build it elsewhere and point BENCH_PREVIOUS_RUNTIME_LOCAL at
 * its `dist/index.js`: it is measured as one more variant ("previous"), with its own defaults under
 * bubblewrap. Target (issue [harden]): within 10 % of the previous profile.
 */
import { localRuntime } from "@agent-runtime/runtime-local";
import { percentile, report, round } from "./harness.ts";

type Provider = ReturnType<typeof localRuntime>;
interface Variant {
  name: string;
  provider: Provider;
}

const rounds = Number(process.env.BENCH_ROUNDS ?? 12);
const echoes = Number(process.env.BENCH_ECHOES ?? 150);
const variants: Variant[] = [{ name: "none (baseline)", provider: localRuntime({ isolation: "none" }) }];
try {
  variants.push(
    {
      name: "bubblewrap, network none",
      provider: localRuntime({ isolation: "bubblewrap", network: "none" }),
    },
    { name: "bubblewrap, egress (default)", provider: localRuntime({ isolation: "bubblewrap" }) },
  );
  if (process.getuid?.() === 0) {
    variants.push({
      name: "bubblewrap, egress, maxProcesses",
      provider: localRuntime({ isolation: "bubblewrap", limits: { maxProcesses: 512 } }),
    });
  }
} catch (err) {
  console.warn(`bubblewrap variants skipped: ${(err as Error).message}`);
}
const previous = process.env.BENCH_PREVIOUS_RUNTIME_LOCAL;
if (previous) {
  const mod = (await import(previous)) as { localRuntime: typeof localRuntime };
  variants.push({ name: "previous (bubblewrap)", provider: mod.localRuntime({ isolation: "bubblewrap" }) });
}

const cold = new Map<string, number[]>(variants.map((v) => [v.name, []]));
for (let i = 0; i < rounds; i++) {
  for (const v of variants) {
    const runtime = await v.provider.create({ sessionId: `cold-${i}` });
    const t0 = performance.now();
    await runtime.connect();
    cold.get(v.name)!.push(performance.now() - t0);
    await runtime.close();
  }
}

const echo = new Map<string, number[]>(variants.map((v) => [v.name, []]));
const open = await Promise.all(
  variants.map(async (v) => {
    const runtime = await v.provider.create({ sessionId: "echo" });
    await runtime.connect();
    for (let i = 0; i < 10; i++) await runtime.runCommand("echo hi");
    return runtime;
  }),
);
for (let batch = 0; batch < echoes / 10; batch++) {
  for (const [i, v] of variants.entries()) {
    for (let k = 0; k < 10; k++) {
      const t0 = performance.now();
      await open[i]!.runCommand("echo hi");
      echo.get(v.name)!.push(performance.now() - t0);
    }
  }
}
for (const runtime of open) await runtime.close();
for (const v of variants) await v.provider.close();

const base = variants[0]!.name;
const prev = previous ? "previous (bubblewrap)" : undefined;
const rows = variants.map((v) => {
  const c = percentile(cold.get(v.name)!, 50);
  const e = percentile(echo.get(v.name)!, 50);
  return {
    case: v.name,
    coldStartP50Ms: round(c, 1),
    coldVsNone: round(c / percentile(cold.get(base)!, 50), 2),
    ...(prev ? { coldVsPrevious: round(c / percentile(cold.get(prev)!, 50), 2) } : {}),
    echoP50Ms: round(e, 2),
    echoP99Ms: round(percentile(echo.get(v.name)!, 99), 2),
    echoVsNone: round(e / percentile(echo.get(base)!, 50), 2),
    ...(prev ? { echoVsPrevious: round(e / percentile(echo.get(prev)!, 50), 2) } : {}),
  };
});
report("sandbox-profile", rows);
