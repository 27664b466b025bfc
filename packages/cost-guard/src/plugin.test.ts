import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  LEASE_TAG_KEY as CORE_LEASE_TAG_KEY,
  type SandboxInventory as CoreSandboxInventory,
  type CostPlugin,
  noopRedactor,
  type PluginContext,
  PluginRegistry,
  type RuntimeError,
  silentLogger,
} from "@agent-runtime/runtime-core";
import { afterEach, describe, expect, expectTypeOf, it } from "vitest";
import { tempDir } from "../test/temp-dir.js";
import type { CostGuard } from "./guard.js";
import { LEASE_TAG_KEY, type SandboxInventory } from "./index.js";
import { costGuard, costGuardPlugin, parseCostGuardOptions } from "./plugin.js";

const context: PluginContext = { logger: silentLogger, redactor: noopRedactor };
const SMALL = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 };

const open: { close(): void }[] = [];
afterEach(() => {
  for (const g of open.splice(0)) g.close();
});

function thrown(fn: () => unknown): RuntimeError {
  try {
    const made = fn() as { close?(): void } | undefined;
    if (made?.close) open.push(made as { close(): void });
  } catch (err) {
    return err as RuntimeError;
  }
  throw new Error("expected a throw");
}

/** The same options through the registry, the factory and parseCostGuardOptions: the three errors. */
function viaEveryPath(options: unknown): RuntimeError[] {
  const registry = new PluginRegistry().register(costGuardPlugin);
  return [
    thrown(() => registry.create("cost", "cost-guard", options, context)),
    thrown(() => costGuard(options as never)),
    thrown(() => parseCostGuardOptions(options)),
  ];
}

describe("the cost-guard plugin on runtime-core's contract", () => {
  it("registry and factory accept and refuse the same options with the same messages", () => {
    const cases: [unknown, string][] = [
      [{ dbPath: "x.db", limits: [] }, 'dbPath: this option is now "ledgerPath"'],
      [
        { budgets: [{ scope: "team", limitUsd: 1 }], chargeAt: "max" },
        'budgets[0].scope: unknown scope "team"',
      ],
      [
        { enforceIntervalMs: 0, pricesFile: "/nonexistent/prices.json" },
        "pricesFile: Cannot read price table file",
      ],
      [
        { enforceIntervalMs: 0, prices: { providers: { modal: { gpuAliases: { Q: "NOPE" } } } } },
        "prices.providers.modal.gpuAliases.Q: unknown GPU type NOPE",
      ],
    ];
    for (const [options, issue] of cases) {
      const errors = viaEveryPath(options);
      for (const err of errors) {
        expect(err.code).toBe("INVALID_ARGUMENT");
        expect(err.message).toContain('Invalid options for cost plugin "cost-guard"');
        expect(err.message).toContain(issue);
      }
      expect(new Set(errors.map((e) => e.message)).size, JSON.stringify(options)).toBe(1);
    }
    // Every renamed key at once, before the schema (which would call them unrecognized).
    expect(viaEveryPath({ dbPath: "x", limits: [] })[0]!.message).toContain(
      'limits: this option is now "budgets"',
    );
  });

  it("validates a prices file's content and names the file", () => {
    const dir = tempDir("cg-plugin-");
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ providers: { modal: { gpus: { Z9: {} } } } }));
    const [err] = viaEveryPath({ enforceIntervalMs: 0, pricesFile: bad });
    expect(err!.message).toContain(`pricesFile: ${bad}: providers.modal.gpus.Z9.perSecondUsd: required`);
    const notJson = join(dir, "not.json");
    writeFileSync(notJson, "{ nope");
    expect(viaEveryPath({ enforceIntervalMs: 0, pricesFile: notJson })[1]!.message).toContain(
      `pricesFile: Price table file ${notJson} is not valid JSON`,
    );
    const good = join(dir, "good.json");
    writeFileSync(good, JSON.stringify({ providers: { local: { cpuPerCoreSecondUsd: 0.001 } } }));
    const g = costGuard({ enforceIntervalMs: 0, pricesFile: good, prices: { version: "mine" } });
    open.push(g);
    expect(g.prices.version).toBe("mine");
    expect(g.prices.providers.local!.cpuPerCoreSecondUsd).toBe(0.001);
  });

  it("creates a CostPlugin from the registry: hooks, rescope, reports, lease lookups and close", async () => {
    const registry = new PluginRegistry().register(costGuardPlugin);
    const cost = registry.create(
      "cost",
      "cost-guard",
      { enforceIntervalMs: 0, budgets: [{ limitUsd: 5 }] },
      context,
    );
    expectTypeOf(cost).toEqualTypeOf<CostPlugin>();
    expectTypeOf<CostGuard>().toExtend<CostPlugin>();
    expectTypeOf(costGuard).returns.toEqualTypeOf<CostGuard>();
    const lease = await cost.reserve({ spec: SMALL, scope: { sessionId: "pool" }, lifetimeMs: 60_000 });
    await cost.activate(lease.leaseId, "sb-1");
    await cost.rescope!(lease.leaseId, { userId: "alice", sessionId: "s-1" });
    expect(cost.getLease!(lease.leaseId)).toMatchObject({ status: "active", lifetimeMs: 60_000 });
    const endedAtMs = Date.now();
    const settled = await cost.settle(lease.leaseId, { reason: "sandbox gone", endedAtMs });
    expect(settled.leaseId).toBe(lease.leaseId);
    expect(cost.getLease!(lease.leaseId)).toMatchObject({ status: "settled" });
    expect(cost.report!({ by: "user" })).toEqual([expect.objectContaining({ key: "alice", leases: 1 })]);
    expect(cost.budgetStatus!()).toEqual([
      expect.objectContaining({ budget: "global/total", scope: "global", reservedUsd: 0 }),
    ]);
    await cost.close!();
    await expect(cost.reserve({ spec: SMALL, scope: {}, lifetimeMs: 1000 })).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
    });
  });

  it("re-exports runtime-core's lease tag key and sandbox inventory under cost-guard's names", () => {
    expect(LEASE_TAG_KEY).toBe(CORE_LEASE_TAG_KEY);
    expectTypeOf<SandboxInventory>().toEqualTypeOf<CoreSandboxInventory>();
  });
});
