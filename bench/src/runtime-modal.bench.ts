/**
 * runtime-modal against modal-emulator (the real `modal@0.11.1` SDK over gRPC, sandboxes as local processes):
 * - connect -> ready -> first action, cold (a new sandbox) vs warm (from the warm pool): ratio cold / warm;
 * - the adapter's overhead over bare SDK calls doing the same work (ephemeral Secret, create with an encrypted
 *   port, tunnels, polling /alive until ready, terminate): ratio adapter / bare.
 * The SDK reads MODAL_* only at client construction; this script isolates it from any developer config.
 */
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { actionServerBinPath } from "@agent-runtime/action-server";
import { startModalEmulator } from "@agent-runtime/modal-emulator";
import { silentLogger } from "@agent-runtime/runtime-core";
import { modalRuntime } from "@agent-runtime/runtime-modal";
import { ModalClient } from "modal";
import { percentile, report, round } from "./harness.ts";

for (const key of Object.keys(process.env)) if (key.startsWith("MODAL_")) delete process.env[key];
process.env.MODAL_CONFIG_PATH = join(tmpdir(), "runtime-modal-bench-no-such-config.toml");
process.env.MODAL_LOGLEVEL = "error";

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 8);
// Strict: the emulator refuses what Modal is documented to refuse (e.g. an idle timeout on a V2 sandbox).
const emulator = await startModalEmulator({ strict: true });
const serverCommand = [process.execPath, actionServerBinPath()];
const common = {
  serverUrl: emulator.serverUrl,
  credentials: { tokenId: emulator.tokenId, tokenSecret: emulator.tokenSecret },
  caCertPem: emulator.caCertPem,
  image: "node:20-bookworm-slim",
  serverCommand,
  cpuCores: 0.25,
  cpuLimitCores: 1,
  memoryMiB: 512,
};
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

// Cold: a new sandbox per session.
const coldProvider = modalRuntime({ ...common, appName: "bench-cold" }, { logger: silentLogger });
const cold: number[] = [];
for (let i = -1; i < ITERATIONS; i++) {
  const runtime = await coldProvider.create({ sessionId: `cold-${i}` });
  const ms = await timed(async () => {
    await runtime.connect();
    await runtime.runCommand("echo hi");
  });
  if (i >= 0) cold.push(ms);
  await runtime.close();
}
await coldProvider.close();

// Warm: a sandbox from the pool (refilled, untimed, between iterations).
const warmProvider = modalRuntime(
  { ...common, appName: "bench-warm", pool: { size: 1 } },
  { logger: silentLogger },
);
const warm: number[] = [];
for (let i = -1; i < ITERATIONS; i++) {
  while (warmProvider.poolReady < 1) await wait(10);
  let runtime: Awaited<ReturnType<typeof warmProvider.create>> | undefined;
  const ms = await timed(async () => {
    runtime = await warmProvider.create({ sessionId: `warm-${i}` });
    await runtime.connect();
    await runtime.runCommand("echo hi");
  });
  if (i >= 0) warm.push(ms);
  await runtime?.close();
}
// On the emulator the pool's refill starts a sandbox on this machine and competes for CPU with the first
// action (on Modal it runs remotely): also time the first action once the refill has settled.
const settled: number[] = [];
for (let i = -1; i < ITERATIONS; i++) {
  while (warmProvider.poolReady < 1) await wait(10);
  const t0 = performance.now();
  const runtime = await warmProvider.create({ sessionId: `settled-${i}` });
  await runtime.connect();
  const acquireMs = performance.now() - t0;
  while (warmProvider.poolReady < 1) await wait(10);
  const actionMs = await timed(async () => {
    await runtime.runCommand("echo hi");
  });
  if (i >= 0) settled.push(acquireMs + actionMs);
  await runtime.close();
}
await warmProvider.close();

// Bare SDK baseline: the same steps without the adapter, on the V1 sandbox API as the adapter's default
// sandboxApi "v1" (the SDK's own default, V2, has no idle timeout).
process.env.MODAL_SERVER_URL = emulator.serverUrl;
process.env.MODAL_SANDBOX_V2 = "0";
const client = new ModalClient({ tokenId: emulator.tokenId, tokenSecret: emulator.tokenSecret });
delete process.env.MODAL_SERVER_URL;
delete process.env.MODAL_SANDBOX_V2;
const app = await client.apps.fromName("bench-bare", { createIfMissing: true });
const image = client.images.fromRegistry("node:20-bookworm-slim");
await image.build(app);

function alive(url: string, key: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${url}/alive`,
      { ca: emulator.caCertPem, headers: { "X-Session-API-Key": key } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 200));
      },
    );
    req.on("error", () => resolve(false));
    req.end();
  });
}

const bare: number[] = [];
for (let i = -1; i < ITERATIONS; i++) {
  const ms = await timed(async () => {
    const key = `bench-key-${i}`;
    const secret = await client.secrets.fromObject({ SESSION_API_KEY: key });
    const sb = await client.sandboxes.create(app, image, {
      command: [...serverCommand, "60000", "--working-dir", "/workspace", "--host", "0.0.0.0"],
      encryptedPorts: [60000],
      secrets: [secret],
      timeoutMs: 3_600_000,
      idleTimeoutMs: 900_000,
      cpu: 0.25,
      cpuLimit: 1,
      memoryMiB: 512,
    });
    const url = (await sb.tunnels())[60000]!.url;
    while (!(await alive(url, key))) await wait(25);
    await sb.terminate({ wait: true });
  });
  if (i >= 0) bare.push(ms);
}

const adapter: number[] = [];
const adapterProvider = modalRuntime({ ...common, appName: "bench-adapter" }, { logger: silentLogger });
for (let i = -1; i < ITERATIONS; i++) {
  const runtime = await adapterProvider.create({ sessionId: `adapter-${i}` });
  const ms = await timed(async () => {
    await runtime.connect();
    await runtime.close();
  });
  if (i >= 0) adapter.push(ms);
}
await adapterProvider.close();
await emulator.close();

const p50 = (v: number[]) => round(percentile(v, 50), 1);
const rows = [
  { case: "cold: connect -> ready -> first action", p50Ms: p50(cold), p99Ms: round(percentile(cold, 99), 1) },
  { case: "warm pool: acquire -> first action", p50Ms: p50(warm), p99Ms: round(percentile(warm, 99), 1) },
  { case: "ratio cold / warm (p50)", ratio: round(percentile(cold, 50) / percentile(warm, 50), 1) },
  {
    case: "warm pool, refill settled: acquire + first action",
    p50Ms: p50(settled),
    p99Ms: round(percentile(settled, 99), 1),
  },
  {
    case: "ratio cold / warm with the refill settled (p50)",
    ratio: round(percentile(cold, 50) / percentile(settled, 50), 1),
  },
  {
    case: "baseline: bare SDK create -> tunnel -> /alive -> terminate",
    p50Ms: p50(bare),
    p99Ms: round(percentile(bare, 99), 1),
  },
  { case: "adapter: connect() -> close()", p50Ms: p50(adapter), p99Ms: round(percentile(adapter, 99), 1) },
  { case: "ratio adapter / bare SDK (p50)", ratio: round(percentile(adapter, 50) / percentile(bare, 50), 2) },
];
report("runtime-modal", rows);
