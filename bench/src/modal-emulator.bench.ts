/**
 * modal-emulator: the real `modal` SDK against the emulator.
 * - create -> exec `echo hi` (read stdout, wait) -> terminate, p50, vs spawning `echo hi` as a local child
 *   process in the same run (ratio);
 * - 50 sandboxes in parallel (create, exec, terminate), total time, vs 50 parallel local spawns.
 * Isolation: the emulator's default (bwrap when available); BENCH_ISOLATION=none|bwrap overrides, and
 * BENCH_BOTH=1 measures both.
 */
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ModalEmulator, startModalEmulator } from "@agent-runtime/modal-emulator";
import { report, round, sample, summarize } from "./harness.ts";

// Isolate the SDK from any developer config before it is imported.
for (const key of Object.keys(process.env)) if (key.startsWith("MODAL_")) delete process.env[key];
process.env.MODAL_CONFIG_PATH = join(tmpdir(), "modal-emulator-bench-no-such-config.toml");
process.env.MODAL_LOGLEVEL = "error";
const { ModalClient } = await import("modal");

function localEcho(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("echo", ["hi"], {
      stdio: ["ignore", "pipe", "ignore"],
      env: { PATH: process.env.PATH ?? "" },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("close", () => (out === "hi\n" ? resolve() : reject(new Error(`unexpected output ${out}`))));
    child.once("error", reject);
  });
}

async function measure(isolation: "auto" | "none" | "bwrap"): Promise<Record<string, unknown>[]> {
  // Strict, as every emulator the tests start; the bare SDK's default V2 sandboxes ask for nothing it refuses.
  const emu: ModalEmulator = await startModalEmulator({ isolation, strict: true });
  try {
    process.env.MODAL_SERVER_URL = emu.serverUrl;
    const client = new ModalClient({ tokenId: emu.tokenId, tokenSecret: emu.tokenSecret });
    const app = await client.apps.fromName("bench", { createIfMissing: true });
    const image = client.images.fromRegistry("alpine:3.21");

    const cycle = async (): Promise<void> => {
      const sb = await client.sandboxes.create(app, image);
      const p = await sb.exec(["echo", "hi"]);
      if ((await p.stdout.readText()) !== "hi\n" || (await p.wait()) !== 0)
        throw new Error("bad exec result");
      await sb.terminate();
    };

    const baseline = summarize(await sample(localEcho, 30, 5));
    const sdk = summarize(await sample(cycle, 30, 3));

    const parallel = 50;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: parallel }, () => cycle()));
    const parallelMs = performance.now() - t0;
    const t1 = performance.now();
    await Promise.all(Array.from({ length: parallel }, () => localEcho()));
    const parallelBaselineMs = performance.now() - t1;
    client.close();

    const mode = emu.isolation;
    return [
      {
        case: `create->exec->terminate p50 (${mode})`,
        ms: round(sdk.p50, 1),
        baselineMs: round(baseline.p50, 2),
        baseline: "local spawn of `echo hi` p50",
        ratio: round(sdk.p50 / baseline.p50, 1),
        p99Ms: round(sdk.p99, 1),
      },
      {
        case: `${parallel} sandboxes in parallel, total (${mode})`,
        ms: round(parallelMs, 0),
        baselineMs: round(parallelBaselineMs, 1),
        baseline: `${parallel} parallel local spawns`,
        ratio: round(parallelMs / parallelBaselineMs, 1),
        perSandboxMs: round(parallelMs / parallel, 1),
      },
    ];
  } finally {
    delete process.env.MODAL_SERVER_URL;
    await emu.close();
  }
}

const requested = process.env.BENCH_ISOLATION as "none" | "bwrap" | undefined;
const modes: ("auto" | "none" | "bwrap")[] = process.env.BENCH_BOTH
  ? ["bwrap", "none"]
  : [requested ?? "auto"];
const rows: Record<string, unknown>[] = [];
for (const mode of modes) rows.push(...(await measure(mode)));
report("modal-emulator", rows);
