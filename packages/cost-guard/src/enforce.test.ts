import type { LogFields, Logger } from "@agent-runtime/runtime-core";
import { afterEach, describe, expect, it } from "vitest";
import { ProcessInventory } from "../test/support/process-inventory.js";
import { ManualClock } from "./clock.js";
import type { CostEvent, CostGuard, CostGuardServices } from "./guard.js";
import type { CostGuardOptions } from "./options.js";
import { costGuard } from "./plugin.js";

const T0 = Date.parse("2026-10-01T10:00:00Z");
const MIN = 60_000;
const HOUR = 3_600_000;
const SMALL = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 };
const SMALL_HOURLY = 0.00003942 * 3600 + 2 * 0.00000667 * 3600;

class RecordingLogger implements Logger {
  readonly lines: { level: string; message: string; fields?: LogFields }[] = [];
  debug(message: string, fields?: LogFields) {
    this.lines.push({ level: "debug", message, ...(fields ? { fields } : {}) });
  }
  info(message: string, fields?: LogFields) {
    this.lines.push({ level: "info", message, ...(fields ? { fields } : {}) });
  }
  warn(message: string, fields?: LogFields) {
    this.lines.push({ level: "warn", message, ...(fields ? { fields } : {}) });
  }
  error(message: string, fields?: LogFields) {
    this.lines.push({ level: "error", message, ...(fields ? { fields } : {}) });
  }
}

const guards: CostGuard[] = [];
function setup(
  options: CostGuardOptions,
  services: Omit<CostGuardServices, "clock" | "logger" | "onEvent"> = {},
) {
  const clock = new ManualClock(T0);
  const logger = new RecordingLogger();
  const events: CostEvent[] = [];
  const g = costGuard(
    { enforceIntervalMs: 0, ...options },
    { clock, logger, onEvent: (e) => events.push(e), ...services },
  );
  guards.push(g);
  return { g, clock, logger, events };
}

const inventories: ProcessInventory[] = [];
afterEach(async () => {
  for (const g of guards.splice(0)) g.close();
  for (const inv of inventories.splice(0)) await inv.dispose();
});

describe("soft thresholds", () => {
  it("warn once per threshold as settled + accrued spend crosses 50, 80 and 100 %", async () => {
    const { g, clock, logger, events } = setup({
      budgets: [{ name: "soft", limitUsd: 0.2, enforcement: "warn" }],
    });
    const lease = await g.reserve({ spec: SMALL, lifetimeMs: 2 * HOUR });
    clock.advance(30 * MIN); // $0.095: 47 %
    expect((await g.enforce()).warnings).toEqual([]);
    clock.advance(6 * MIN); // $0.114: 57 %
    expect((await g.enforce()).warnings.map((w) => w.percent)).toEqual([50]);
    expect(g.accruedUsd(g.getLease(lease.leaseId)!)).toBeCloseTo(SMALL_HOURLY * 0.6, 9);
    clock.advance(30 * MIN); // $0.209: 104 %
    const report = await g.enforce();
    expect(report.warnings.map((w) => w.percent)).toEqual([80, 100]);
    expect(report.warnings[1]).toMatchObject({
      budget: "soft",
      scopeKey: "global",
      periodKey: "total",
      limitUsd: 0.2,
    });
    expect((await g.enforce()).warnings).toEqual([]);
    await g.settle(lease.leaseId);
    expect(events.filter((e) => e.type === "warning")).toHaveLength(3);
    expect(logger.lines.filter((l) => l.level === "warn").map((l) => l.message)).toContainEqual(
      expect.stringMatching(/^Budget "soft" \(global, total\) reached 80%: spent \$0\.20\d+ of \$0\.20\.$/),
    );
  });

  it("warn when a settlement crosses a threshold of a hard budget, once per period", async () => {
    const { g, clock, events } = setup({
      budgets: [{ name: "d", period: "daily", limitUsd: 0.5, warnAtPercent: [30] }],
    });
    const a = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    clock.advance(HOUR);
    await g.settle(a.leaseId); // $0.19 of $0.50
    expect(events).toEqual([
      expect.objectContaining({ type: "warning", budget: "d", percent: 30, periodKey: "day:2026-10-01" }),
    ]);
    const b = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    await g.settle(b.leaseId);
    expect(events).toHaveLength(1);
    clock.advance(24 * HOUR);
    const c = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    clock.advance(HOUR);
    await g.settle(c.leaseId);
    expect(events.map((e) => (e.type === "warning" ? e.periodKey : ""))).toEqual([
      "day:2026-10-01",
      "day:2026-10-02",
    ]);
  });
});

describe("idle reaper", () => {
  it("terminates and settles leases without a heartbeat for idleTimeoutMs", async () => {
    const { g, clock, events } = setup({ idleTimeoutMs: MIN });
    const lease = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    await g.activate(lease.leaseId, "sb-1");
    const reasons: string[] = [];
    g.onTerminate(lease.leaseId, async (reason) => {
      reasons.push(reason);
      await g.settle(lease.leaseId, { reason: "runtime closed by cost guard" }); // what a runtime's close does
    });
    clock.advance(40_000);
    await g.heartbeat(lease.leaseId);
    clock.advance(MIN);
    expect((await g.enforce()).reaped).toEqual([]);
    clock.advance(1);
    const report = await g.enforce();
    expect(report.reaped).toEqual([
      {
        leaseId: lease.leaseId,
        reason: expect.stringContaining("idle: no heartbeat for 60001 ms"),
        terminated: true,
      },
    ]);
    expect(reasons).toHaveLength(1);
    expect(g.getLease(lease.leaseId)).toMatchObject({
      status: "settled",
      settleReason: "runtime closed by cost guard",
      durationMs: 100_001,
    });
    expect(events).toContainEqual(
      expect.objectContaining({ type: "terminate", cause: "idle", sandboxId: "sb-1", terminated: true }),
    );
    expect(await g.heartbeat(lease.leaseId).catch((e: { code: string }) => e.code)).toBe(
      "FAILED_PRECONDITION",
    );
  });

  it("settles idle leases of crashed holders and stops their sandboxes through the inventory", async () => {
    const inventory = new ProcessInventory();
    inventories.push(inventory);
    const { g, clock, events } = setup({ idleTimeoutMs: MIN }, { inventory });
    const lease = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    const sandboxId = inventory.create(lease.tags);
    await g.activate(lease.leaseId, sandboxId);
    clock.advance(1);
    const orphan = await g.reserve({ spec: SMALL, lifetimeMs: HOUR }); // never created: no sandbox at all
    clock.advance(2 * MIN);
    const report = await g.enforce();
    expect(report.reaped.map((r) => [r.leaseId, r.terminated])).toEqual([
      [lease.leaseId, true],
      [orphan.leaseId, false],
    ]);
    expect(inventory.alive(sandboxId)).toBe(false);
    expect(g.openLeases()).toEqual([]);
    expect(g.getLease(orphan.leaseId)!.settleReason).toMatch(/^idle: idle: no heartbeat/);
    expect(events.filter((e) => e.type === "terminate")).toHaveLength(2);
  });
});

describe("terminate budgets", () => {
  it("call the terminate hook when a running lease would cross the budget before it ends", async () => {
    const { g, clock, events } = setup({
      budgets: [{ name: "hard", limitUsd: 0.19, enforcement: "terminate" }],
    });
    const lease = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    await g.activate(lease.leaseId, "sb-1");
    const reasons: string[] = [];
    g.onTerminate(lease.leaseId, async (reason) => {
      reasons.push(reason);
    });
    clock.advance(30 * MIN);
    expect((await g.enforce()).terminated).toEqual([]);
    clock.advance(31 * MIN); // past its reserved hour: the sandbox was not stopped at its lifetime
    const report = await g.enforce();
    expect(report.overruns).toEqual([{ leaseId: lease.leaseId, overrunMs: MIN }]);
    expect(report.terminated).toHaveLength(1);
    expect(reasons).toEqual([
      expect.stringContaining('budget "hard" (global, total) would be crossed before the lease ends'),
    ]);
    expect(reasons[0]).toContain("limit $0.19");
    const settled = g.getLease(lease.leaseId)!;
    expect(settled.status).toBe("settled");
    expect(settled.settleReason).toMatch(/^budget: /);
    expect(settled.chargedUsd).toBeCloseTo(SMALL_HOURLY * (61 / 60), 6);
    expect(events.filter((e) => e.type !== "warning").map((e) => e.type)).toEqual(["overrun", "terminate"]);
  });

  it("stop the newest leases first, only as many as needed; a failing hook leaves the lease open and is reported", async () => {
    const inventory = new ProcessInventory();
    inventories.push(inventory);
    const { g, clock, logger } = setup(
      { budgets: [{ limitUsd: 0.6, enforcement: "terminate" }], enforceIntervalMs: 0 },
      { inventory },
    );
    const leases = [];
    for (let i = 0; i < 3; i++) {
      const lease = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
      const sandboxId = inventory.create(lease.tags);
      await g.activate(lease.leaseId, sandboxId);
      leases.push({ ...lease, sandboxId });
      clock.advance(1000);
    }
    g.onTerminate(leases[2]!.leaseId, async () => {
      throw new Error("runtime already gone");
    });
    clock.set(T0 + 2 * HOUR); // all three overran: projected ~ 3 x $0.38
    const report = await g.enforce();
    expect(report.terminated.map((t) => [t.leaseId, t.terminated])).toEqual([
      [leases[2]!.leaseId, false],
      [leases[1]!.leaseId, true],
      [leases[0]!.leaseId, true],
    ]);
    expect(inventory.alive(leases[0]!.sandboxId)).toBe(false);
    expect(inventory.alive(leases[1]!.sandboxId)).toBe(false);
    expect(inventory.alive(leases[2]!.sandboxId)).toBe(true);
    expect(g.openLeases().map((l) => l.leaseId)).toEqual([leases[2]!.leaseId]);
    expect(logger.lines.some((l) => l.level === "error" && l.message.includes("Terminate hook"))).toBe(true);
  });

  it("refuse budgets never stop running sandboxes; overruns are reported once", async () => {
    const { g, clock, events } = setup({ budgets: [{ limitUsd: 0.19 }] });
    const lease = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    let called = false;
    g.onTerminate(lease.leaseId, async () => {
      called = true;
    });
    clock.advance(2 * HOUR);
    expect((await g.enforce()).terminated).toEqual([]);
    await g.enforce();
    expect(called).toBe(false);
    expect(events.filter((e) => e.type !== "warning")).toEqual([
      { type: "overrun", leaseId: lease.leaseId, overrunMs: HOUR },
    ]);
  });

  it("run on a timer when enforceIntervalMs > 0, and stop on close", async () => {
    const { g, clock, events, logger } = setup({
      budgets: [{ limitUsd: 1, enforcement: "warn", warnAtPercent: [10] }],
      enforceIntervalMs: 20,
    });
    await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    clock.advance(HOUR); // $0.19 accrued: 19 %
    const deadline = Date.now() + 5000;
    while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual([expect.objectContaining({ type: "warning", percent: 10 })]);
    g.close();
    await new Promise((r) => setTimeout(r, 80));
    expect(logger.lines.filter((l) => l.level === "error")).toEqual([]);
  });
});
