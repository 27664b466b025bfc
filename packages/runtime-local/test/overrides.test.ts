import {
  type CostHooks,
  type CostScope,
  isRuntimeError,
  noopRedactor,
  type RuntimeError,
  RuntimeStatus,
  type SandboxCostSpec,
  silentLogger,
} from "@agent-runtime/runtime-core";
import { afterEach, describe, expect, it } from "vitest";
import { type LocalRuntime, localRuntime } from "../src/index.js";

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
});

async function errorOf(p: Promise<unknown>): Promise<RuntimeError> {
  try {
    await p;
  } catch (err) {
    if (isRuntimeError(err)) return err;
    throw err;
  }
  throw new Error("expected a rejection");
}

/** Cost hooks that record what was reserved (no money involved). */
function recordingCost(): { cost: CostHooks; reserved: { spec: SandboxCostSpec; scope: CostScope }[] } {
  const reserved: { spec: SandboxCostSpec; scope: CostScope }[] = [];
  let n = 0;
  const cost: CostHooks = {
    reserve: async ({ spec, scope, lifetimeMs }) => {
      reserved.push({ spec, scope });
      return { leaseId: `lease-${n++}`, reservedUsd: 0, lifetimeMs };
    },
    activate: async () => undefined,
    heartbeat: async () => undefined,
    settle: async (leaseId) => ({ leaseId, chargedUsd: 0, durationMs: 0 }),
  };
  return { cost, reserved };
}

describe("runtime-local: per-session overrides", () => {
  it("refuses image, gpu, cpuCores and the timeouts with UNSUPPORTED naming each field", async () => {
    const provider = localRuntime({ isolation: "none" });
    opened.push(provider);
    expect(provider.supportedOverrides).toEqual(["memoryMiB", "env"]);
    const err = await errorOf(
      provider.create({
        sessionId: "s",
        image: "python:3.12",
        gpu: "T4",
        cpuCores: 2,
        timeoutMs: 60_000,
        idleTimeoutMs: 10_000,
      }),
    );
    expect(err.code).toBe("UNSUPPORTED");
    expect(err.details?.fields).toEqual(["image", "gpu", "cpuCores", "timeoutMs", "idleTimeoutMs"]);
    expect(err.message).toContain(
      "gpu: the local backend cannot set this per session; the local backend has no GPUs",
    );
    const bad = await errorOf(provider.create({ sessionId: "s", memoryMiB: 12.5 }));
    expect(bad.code).toBe("INVALID_ARGUMENT");
    expect(bad.message).toContain("memoryMiB:");
  });

  it("env merges over the provider's, memoryMiB bounds the commands, labels stay in the handle, userId scopes the lease", async () => {
    const { cost, reserved } = recordingCost();
    const provider = localRuntime(
      { isolation: "none", env: { A: "provider", B: "provider" } },
      { logger: silentLogger, redactor: noopRedactor, cost },
    );
    opened.push(provider);
    const runtime = await provider.create({
      sessionId: "shaped",
      env: { B: "session", C: "session" },
      memoryMiB: 256,
      labels: { team: "ml" },
      userId: "alice",
    });
    opened.push(runtime);
    await runtime.connect();
    const out = await runtime.runCommand('echo "$A $B $C"', { blocking: true });
    expect(out.content.trim().split("\n")[0]).toBe("provider session session");
    // memoryMiB bounds the commands as limits.memoryMiB does (a memory cgroup on root hosts, else an rlimit).
    const mem = await runtime.runCommand(
      `python3 -c "x = bytearray(600*1024*1024); print('allocated')" 2>&1 | tail -1; echo done`,
    );
    expect(mem.content).not.toContain("allocated");
    expect(reserved).toHaveLength(1);
    expect(reserved[0]!.scope).toEqual({ sessionId: "shaped", userId: "alice" });
    expect(reserved[0]!.spec.memoryMiB).toBe(256);
    expect(runtime.labels).toEqual({ team: "ml" });
    const handle = runtime.handle();
    expect(handle.data.overrides).toMatchObject({ labels: { team: "ml" }, userId: "alice", memoryMiB: 256 });

    // A restarted host re-attaches with the same overrides.
    const again = await localRuntime({ isolation: "none" }).attach(JSON.parse(JSON.stringify(handle)));
    expect(again.labels).toEqual({ team: "ml" });
    expect(again.overrides.userId).toBe("alice");
  });

  it("a warm pool serves only creates that keep its shape", async () => {
    const provider = localRuntime({ isolation: "none", pool: { size: 1 } });
    opened.push(provider);
    const deadline = Date.now() + 15_000;
    while (provider.poolReady < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(provider.poolReady).toBe(1);
    // Different env, or a cost scope: a new sandbox, the pooled one stays.
    const own = (await provider.create({ sessionId: "own", env: { X: "1" } })) as LocalRuntime;
    opened.push(own);
    expect(own.status).toBe(RuntimeStatus.STOPPED);
    const scoped = await provider.create({ sessionId: "scoped", userId: "bob" });
    opened.push(scoped);
    expect(scoped.status).toBe(RuntimeStatus.STOPPED);
    expect(provider.poolReady).toBe(1);
    // Labels only: the pooled sandbox, labelled.
    const pooled = await provider.create({ sessionId: "pooled", labels: { kind: "warm" } });
    opened.push(pooled);
    expect(pooled.status).toBe(RuntimeStatus.READY);
    expect(pooled.labels).toEqual({ kind: "warm" });
    expect(pooled.handle().data.overrides).toEqual({ labels: { kind: "warm" } });
  });
});
