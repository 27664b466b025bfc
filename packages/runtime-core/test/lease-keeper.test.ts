import { describe, expect, it } from "vitest";
import type { CostHooks, CostScope, LeaseInfo, SettlementInfo } from "../src/context.js";
import { isRuntimeError } from "../src/errors.js";
import type { Logger } from "../src/logger.js";
import { LeaseKeeper } from "../src/runtime/lease-keeper.js";

/** One call the test-double cost plugin received. */
type Call =
  | { op: "reserve"; scope: CostScope }
  | { op: "activate"; leaseId: string; sandboxId: string }
  | { op: "heartbeat"; leaseId: string }
  | { op: "rescope"; leaseId: string; scope: CostScope }
  | { op: "settle"; leaseId: string; reason: string | undefined };

/**
 * A test double of a cost plugin's lease hooks: it records every call and can be slowed down or made to fail.
 * No money is involved; the real cost plugin (cost-guard) is tested in its own package.
 */
function testDoubleCostPlugin(
  options: { rescope?: boolean; settleDelayMs?: number; failSettle?: boolean; failRescope?: boolean } = {},
) {
  const calls: Call[] = [];
  let terminate: ((reason: string) => Promise<void>) | undefined;
  let n = 0;
  const cost: CostHooks = {
    reserve: async ({ scope, lifetimeMs }): Promise<LeaseInfo> => {
      calls.push({ op: "reserve", scope });
      await new Promise((r) => setTimeout(r, 5));
      return { leaseId: `lease-${n++}`, reservedUsd: 0.5, lifetimeMs };
    },
    activate: async (leaseId, sandboxId) => {
      calls.push({ op: "activate", leaseId, sandboxId });
    },
    heartbeat: async (leaseId) => {
      calls.push({ op: "heartbeat", leaseId });
    },
    settle: async (leaseId, o): Promise<SettlementInfo> => {
      calls.push({ op: "settle", leaseId, reason: o?.reason });
      await new Promise((r) => setTimeout(r, options.settleDelayMs ?? 0));
      if (options.failSettle) throw new Error("ledger is locked");
      return { leaseId, chargedUsd: 0.01, durationMs: 1000 };
    },
    onTerminate: (_leaseId, fn) => {
      terminate = fn;
      return () => {
        terminate = undefined;
      };
    },
    ...(options.rescope === false
      ? {}
      : {
          rescope: async (leaseId: string, scope: CostScope) => {
            calls.push({ op: "rescope", leaseId, scope });
            if (options.failRescope) throw new Error("BUDGET_EXCEEDED: user bob is over budget");
          },
        }),
  };
  return { cost, calls, terminateHook: () => terminate };
}

function capturingLogger(): { logger: Logger; warnings: { message: string; fields: unknown }[] } {
  const warnings: { message: string; fields: unknown }[] = [];
  const ignore = () => undefined;
  return {
    warnings,
    logger: {
      debug: ignore,
      info: ignore,
      warn: (message, fields) => warnings.push({ message, fields }),
      error: ignore,
    },
  };
}

const spec = { provider: "local", cpuCores: 1, memoryMiB: 512 };
const settles = (calls: Call[]) => calls.filter((c) => c.op === "settle");

describe("LeaseKeeper (with a test-double cost plugin)", () => {
  it("settles exactly once when close, a disconnect and a budget stop all ask at the same time", async () => {
    const { cost, calls } = testDoubleCostPlugin({ settleDelayMs: 30 });
    const keeper = new LeaseKeeper({ cost, logger: capturingLogger().logger });
    await keeper.reserve({ spec, scope: { sessionId: "s1" }, lifetimeMs: 60_000 });
    await keeper.activate("sb-1");
    const first = keeper.settle("sandbox gone: exited");
    const results = await Promise.all([first, keeper.settle("closed"), keeper.settle("budget")]);
    expect(settles(calls)).toEqual([{ op: "settle", leaseId: "lease-0", reason: "sandbox gone: exited" }]);
    expect(results.every((r) => r === results[0])).toBe(true);
    expect(results[0]).toEqual({ leaseId: "lease-0", chargedUsd: 0.01, durationMs: 1000 });
    // Later calls return the first settlement's promise.
    expect(keeper.settle("closed again")).toBe(first);
    expect(keeper.settled).toBe(true);
  });

  it("a settle that arrives while the reservation is in flight settles the lease once it exists", async () => {
    const { cost, calls } = testDoubleCostPlugin();
    const keeper = new LeaseKeeper({ cost, logger: capturingLogger().logger });
    const reserving = keeper.reserve({ spec, scope: { sessionId: "s1" }, lifetimeMs: 60_000 });
    const settled = keeper.settle("connect failed");
    await reserving;
    await settled;
    expect(calls.map((c) => c.op)).toEqual(["reserve", "settle"]);
    // Activating a settled lease does nothing; reserving again is refused.
    await keeper.activate("sb-late");
    expect(calls.map((c) => c.op)).toEqual(["reserve", "settle"]);
    const again = await keeper.reserve({ spec, scope: {}, lifetimeMs: 1 }).catch((e: unknown) => e);
    expect(isRuntimeError(again, "FAILED_PRECONDITION")).toBe(true);
  });

  it("rescopes in order and settles after the rescope; the scope follows what the cost plugin accepted", async () => {
    const { cost, calls } = testDoubleCostPlugin();
    const keeper = new LeaseKeeper({ cost, logger: capturingLogger().logger });
    await keeper.reserve({ spec, scope: { sessionId: "pool-1" }, lifetimeMs: 60_000 });
    void keeper.rescope({ sessionId: "alice-session", userId: "alice" });
    await keeper.settle("closed");
    expect(calls.map((c) => c.op)).toEqual(["reserve", "rescope", "settle"]);
    expect(calls[1]).toEqual({
      op: "rescope",
      leaseId: "lease-0",
      scope: { sessionId: "alice-session", userId: "alice" },
    });
    expect(keeper.scope).toEqual({ sessionId: "alice-session", userId: "alice" });
    // After the settlement, a rescope does nothing.
    await keeper.rescope({ sessionId: "later" });
    expect(calls.filter((c) => c.op === "rescope")).toHaveLength(1);
  });

  it("a cost plugin without rescope keeps the pool's scope and says so in a warning", async () => {
    const { cost, calls } = testDoubleCostPlugin({ rescope: false });
    const { logger, warnings } = capturingLogger();
    const keeper = new LeaseKeeper({ cost, logger });
    await keeper.reserve({ spec, scope: { sessionId: "pool-1" }, lifetimeMs: 60_000 });
    await keeper.rescope({ sessionId: "s1" });
    expect(keeper.scope).toEqual({ sessionId: "pool-1" });
    expect(warnings[0]?.message).toMatch(/CostHooks\.rescope is missing.*pool's scope/);
    expect(warnings[0]?.fields).toEqual({ leaseId: "lease-0", fromSessionId: "pool-1", toSessionId: "s1" });
    await keeper.settle("closed");
    expect(settles(calls)).toHaveLength(1);
  });

  it("a rescope the cost plugin refuses keeps the old scope (logged, not thrown)", async () => {
    const { cost } = testDoubleCostPlugin({ failRescope: true });
    const { logger, warnings } = capturingLogger();
    const keeper = new LeaseKeeper({ cost, logger });
    await keeper.reserve({ spec, scope: { sessionId: "pool-1" }, lifetimeMs: 60_000 });
    await keeper.rescope({ sessionId: "s1", userId: "bob" });
    expect(keeper.scope).toEqual({ sessionId: "pool-1" });
    expect(warnings.map((w) => w.message)).toEqual([
      "moving the cost lease to its session failed; it keeps its old scope",
    ]);
  });

  it("a failing settle is logged once and never retried by later calls", async () => {
    const { cost, calls } = testDoubleCostPlugin({ failSettle: true });
    const { logger, warnings } = capturingLogger();
    const keeper = new LeaseKeeper({ cost, logger });
    await keeper.reserve({ spec, scope: { sessionId: "s1" }, lifetimeMs: 60_000 });
    expect(await keeper.settle("closed")).toBeUndefined();
    expect(await keeper.settle("closed")).toBeUndefined();
    expect(settles(calls)).toHaveLength(1);
    expect(warnings).toEqual([
      {
        message: "settling the cost lease failed",
        fields: { leaseId: "lease-0", error: "Error: ledger is locked" },
      },
    ]);
  });

  it("removes the terminate hook when it settles, and on detach (a kept-alive sandbox)", async () => {
    const { cost, terminateHook } = testDoubleCostPlugin();
    const keeper = new LeaseKeeper({ cost, logger: capturingLogger().logger });
    await keeper.reserve({ spec, scope: {}, lifetimeMs: 60_000 });
    keeper.onTerminate(async () => undefined);
    expect(terminateHook()).toBeDefined();
    keeper.detach();
    expect(terminateHook()).toBeUndefined();
    keeper.onTerminate(async () => undefined);
    await keeper.settle("closed");
    expect(terminateHook()).toBeUndefined();
  });

  it("heartbeats at most once per interval", async () => {
    const { cost, calls } = testDoubleCostPlugin();
    const keeper = new LeaseKeeper({ cost, logger: capturingLogger().logger, heartbeatEveryMs: 60_000 });
    await keeper.reserve({ spec, scope: {}, lifetimeMs: 60_000 });
    keeper.heartbeat();
    keeper.heartbeat();
    expect(calls.filter((c) => c.op === "heartbeat")).toHaveLength(1);
  });

  it("without a cost plugin or a spec it holds nothing and settles nothing", async () => {
    const none = new LeaseKeeper({ cost: undefined, logger: capturingLogger().logger });
    expect(await none.reserve({ spec, scope: {}, lifetimeMs: 1 })).toBeUndefined();
    expect(await none.settle("closed")).toBeUndefined();
    const { cost, calls } = testDoubleCostPlugin();
    const free = new LeaseKeeper({ cost, logger: capturingLogger().logger });
    expect(await free.reserve({ spec: undefined, scope: {}, lifetimeMs: 1 })).toBeUndefined();
    await free.settle("closed");
    expect(calls).toEqual([]);
  });
});
