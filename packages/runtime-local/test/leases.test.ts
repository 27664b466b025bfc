import {
  type CostHooks,
  type CostScope,
  isRuntimeError,
  type LeaseInfo,
  type Logger,
  noopRedactor,
  type PluginContext,
  RuntimeStatus,
  type SettlementInfo,
  type StatusEvent,
  silentLogger,
} from "@agent-runtime/runtime-core";
import { afterEach, describe, expect, it } from "vitest";
import { type LocalRuntime, localRuntime } from "../src/index.js";
import { processAlive } from "../src/sandbox-process.js";

/**
 * The lease lifecycle of runtime-local, which it gets from runtime-core's LeaseKeeper through BaseRuntime, with
 * real sandboxes (isolation none) and a **test double of the cost plugin** (it records calls; no money, no
 * ledger: cost-guard is tested in its own package and is no dependency of this one).
 */

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
});

type Call =
  | { op: "reserve"; scope: CostScope; provider: string }
  | { op: "activate"; leaseId: string; sandboxId: string }
  | { op: "rescope"; leaseId: string; scope: CostScope }
  | { op: "settle"; leaseId: string; reason: string | undefined };

/** A test double of a cost plugin: records calls, optionally slow to settle, optionally without `rescope`. */
function testDoubleCostPlugin(options: { settleDelayMs?: number; rescope?: boolean } = {}) {
  const calls: Call[] = [];
  const hooks = new Map<string, (reason: string) => Promise<void>>();
  let n = 0;
  let settledAt = 0;
  const cost: CostHooks = {
    reserve: async ({ spec, scope, lifetimeMs }): Promise<LeaseInfo> => {
      calls.push({ op: "reserve", scope, provider: spec.provider });
      return { leaseId: `lease-${n++}`, reservedUsd: 0, lifetimeMs };
    },
    activate: async (leaseId, sandboxId) => {
      calls.push({ op: "activate", leaseId, sandboxId });
    },
    heartbeat: async () => undefined,
    settle: async (leaseId, o): Promise<SettlementInfo> => {
      calls.push({ op: "settle", leaseId, reason: o?.reason });
      await new Promise((r) => setTimeout(r, options.settleDelayMs ?? 0));
      settledAt = Date.now();
      return { leaseId, chargedUsd: 0, durationMs: 0 };
    },
    onTerminate: (leaseId, terminate) => {
      hooks.set(leaseId, terminate);
      return () => hooks.delete(leaseId);
    },
    ...(options.rescope === false
      ? {}
      : {
          rescope: async (leaseId: string, scope: CostScope) => {
            calls.push({ op: "rescope", leaseId, scope });
          },
        }),
  };
  return {
    cost,
    calls,
    hooks,
    settledAt: () => settledAt,
    settles: () => calls.filter((c) => c.op === "settle"),
  };
}

function capturingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, logger: { ...silentLogger, warn: (message) => warnings.push(message) } };
}

async function eventually(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function connected(context: Partial<PluginContext>, sessionId: string, keepAlive = false) {
  const provider = localRuntime({ isolation: "none", keepAlive }, { redactor: noopRedactor, ...context });
  opened.push(provider);
  const runtime = await provider.create({ sessionId });
  opened.push(runtime);
  await runtime.connect();
  return runtime;
}

describe("runtime-local leases (test-double cost plugin)", () => {
  it("reserves at local prices before the sandbox starts, activates it with the sandbox id, settles once on close", async () => {
    const double = testDoubleCostPlugin();
    const runtime = await connected({ cost: double.cost }, "s-plain");
    expect(double.calls.slice(0, 2)).toEqual([
      { op: "reserve", scope: { sessionId: "s-plain" }, provider: "local" },
      { op: "activate", leaseId: "lease-0", sandboxId: runtime.handle().data.sandboxId },
    ]);
    await Promise.all([runtime.close(), runtime.close()]);
    await runtime.close();
    expect(double.settles()).toEqual([{ op: "settle", leaseId: "lease-0", reason: "closed" }]);
  });

  it("a sandbox that dies settles at once without close(); close racing with it settles nothing more", async () => {
    const double = testDoubleCostPlugin({ settleDelayMs: 150 });
    const runtime = await connected({ cost: double.cost }, "s-dies");
    const events: StatusEvent[] = [];
    runtime.onStatus((e) => events.push(e));
    process.kill(-runtime.pid!, "SIGKILL");
    await eventually(() => double.settles().length === 1);
    // The disconnect's settlement is still in flight (150 ms): two closes now share it.
    const closes = Promise.all([runtime.close(), runtime.close()]);
    await closes;
    expect(double.settledAt()).toBeGreaterThan(0);
    expect(double.settles()).toHaveLength(1);
    expect(double.settles()[0]!.reason).toMatch(/^sandbox gone: the action server exited/);
    expect(events.map((e) => e.status)).toEqual([
      RuntimeStatus.ERROR_RUNTIME_DISCONNECTED,
      RuntimeStatus.STOPPED,
    ]);
  });

  it("close and a kill at the same moment settle once", async () => {
    const double = testDoubleCostPlugin({ settleDelayMs: 20 });
    const runtime = await connected({ cost: double.cost }, "s-race");
    const pid = runtime.pid!;
    await Promise.all([runtime.close(), Promise.resolve().then(() => process.kill(-pid, "SIGKILL"))]);
    await new Promise((r) => setTimeout(r, 100));
    expect(double.settles()).toHaveLength(1);
    expect(processAlive(pid)).toBe(false);
  });

  it("a failed start stops the sandbox and settles its lease once", async () => {
    const double = testDoubleCostPlugin();
    const provider = localRuntime(
      { isolation: "none" },
      {
        redactor: noopRedactor,
        cost: double.cost,
        // A secret file with a relative path fails the start after the server is up: provisioning refuses it.
        secrets: {
          resolve: async () => ({
            env: {},
            names: [],
            redactor: noopRedactor,
            files: { "relative/token": { content: "x", mode: 0o600 } },
          }),
        },
      },
    );
    opened.push(provider);
    const runtime = await provider.create({ sessionId: "s-fails" });
    const error = await runtime.connect().catch((e: unknown) => e);
    expect(isRuntimeError(error, "INVALID_ARGUMENT")).toBe(true);
    expect(String((error as Error).message)).toMatch(/secrets\.files: "relative\/token" must be absolute/);
    expect(double.calls.map((c) => c.op)).toEqual(["reserve", "activate", "settle"]);
    expect(double.settles()[0]!.reason).toBe("connect failed");
    const sandboxId = (double.calls[1] as { sandboxId: string }).sandboxId;
    expect(sandboxId).toMatch(/^local-/);
    expect(runtime.status).toBe(RuntimeStatus.ERROR);
    await runtime.close();
    expect(double.settles()).toHaveLength(1);
  });

  it("a budget stop ends the sandbox, even a kept-alive one, and settles once", async () => {
    const double = testDoubleCostPlugin();
    const runtime = await connected({ cost: double.cost }, "s-budget", true);
    const pid = runtime.pid!;
    const stop = double.hooks.get("lease-0");
    expect(stop).toBeDefined();
    await stop!("budget daily exceeded");
    expect(runtime.status).toBe(RuntimeStatus.STOPPED);
    expect(processAlive(pid)).toBe(false);
    await runtime.close();
    expect(double.settles()).toEqual([
      { op: "settle", leaseId: "lease-0", reason: "stopped by the cost plugin: budget daily exceeded" },
    ]);
    expect(double.hooks.size).toBe(0);
  });

  it("a pooled sandbox's lease moves to the session it is handed to (pool of 1)", async () => {
    const double = testDoubleCostPlugin();
    const provider = localRuntime(
      { isolation: "none", pool: { size: 1 } },
      { redactor: noopRedactor, logger: silentLogger, cost: double.cost },
    );
    opened.push(provider);
    await eventually(() => provider.poolReady === 1, 20_000);
    const poolScope = (double.calls[0] as { scope: CostScope }).scope;
    expect(poolScope.sessionId).toMatch(/^pool-/);
    const runtime = await provider.create({ sessionId: "handed-out", labels: { team: "ml" } });
    opened.push(runtime);
    expect(runtime.lease?.leaseId).toBe("lease-0");
    await eventually(() => double.calls.some((c) => c.op === "rescope"));
    expect(double.calls.find((c) => c.op === "rescope")).toEqual({
      op: "rescope",
      leaseId: "lease-0",
      scope: { sessionId: "handed-out" },
    });
    expect((await runtime.runCommand("echo pooled")).content.trim()).toBe("pooled");
    await runtime.close();
    const ops = double.calls.filter((c) => "leaseId" in c && c.leaseId === "lease-0").map((c) => c.op);
    expect(ops).toEqual(["activate", "rescope", "settle"]);
  });

  it("without CostHooks.rescope the handed-out sandbox keeps the pool's scope, with a warning", async () => {
    const double = testDoubleCostPlugin({ rescope: false });
    const { logger, warnings } = capturingLogger();
    const provider = localRuntime(
      { isolation: "none", pool: { size: 1 } },
      { redactor: noopRedactor, logger, cost: double.cost },
    );
    opened.push(provider);
    await eventually(() => provider.poolReady === 1, 20_000);
    const runtime = await provider.create({ sessionId: "handed-out-2" });
    opened.push(runtime);
    await eventually(() => warnings.some((w) => w.includes("CostHooks.rescope is missing")));
    await runtime.close();
    expect(double.settles().filter((c) => c.leaseId === "lease-0")).toHaveLength(1);
  });

  it("without a cost plugin there is no lease at all", async () => {
    const runtime: LocalRuntime = await connected({}, "s-free");
    expect(runtime.lease).toBeUndefined();
    expect(runtime.handle().data.leaseId).toBeUndefined();
  });
});
