import { silentLogger } from "@agent-runtime/runtime-core";
import { afterEach, describe, expect, it } from "vitest";
import { ProcessInventory } from "../test/support/process-inventory.js";
import { ManualClock } from "./clock.js";
import type { CostEvent } from "./guard.js";
import { costGuard } from "./plugin.js";
import { LEASE_TAG_KEY } from "./sweeper.js";

const T0 = Date.parse("2026-10-01T10:00:00Z");
const MIN = 60_000;
const HOUR = 3_600_000;
const SMALL = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 };
const SMALL_HOURLY = 0.00003942 * 3600 + 2 * 0.00000667 * 3600;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("orphan sweeper", () => {
  it("reconciles leases with sandboxes listed by tag: settle, terminate, adopt, and leave foreign ones alone", async () => {
    const inventory = new ProcessInventory("modal");
    cleanups.push(() => inventory.dispose());
    const clock = new ManualClock(T0);
    const events: CostEvent[] = [];
    const g = costGuard(
      { enforceIntervalMs: 0 },
      { clock, logger: silentLogger, onEvent: (e) => events.push(e) },
    );
    cleanups.push(() => g.close());
    const reserve = () => g.reserve({ spec: SMALL, lifetimeMs: HOUR });

    const healthy = await reserve();
    const healthySb = inventory.create(healthy.tags);
    await g.activate(healthy.leaseId, healthySb);

    const interrupted = await reserve(); // create returned a sandbox but the host crashed before activate
    const interruptedSb = inventory.create(interrupted.tags);

    const died = await reserve(); // its sandbox died without anyone settling the lease
    const diedSb = inventory.create(died.tags);
    await g.activate(died.leaseId, diedSb);
    await inventory.kill(diedSb);

    const settled = await reserve(); // settled, but teardown threw before terminate()
    const settledSb = inventory.create(settled.tags);
    await g.activate(settled.leaseId, settledSb);
    await g.settle(settled.leaseId);

    const unknownSb = inventory.create({ [LEASE_TAG_KEY]: `cg-${g.ledgerId}-${"0".repeat(32)}` });
    const foreignSb = inventory.create({ [LEASE_TAG_KEY]: "cg-0123456789abcdef-ffff" });
    const stuckSb = inventory.create({ [LEASE_TAG_KEY]: `cg-${g.ledgerId}-${"1".repeat(32)}` });
    inventory.failTerminate.add(stuckSb);
    inventory.create({ team: "untagged" });

    const otherProvider = await g.reserve({
      spec: { provider: "local", cpuCores: 1, memoryMiB: 512 },
      lifetimeMs: HOUR,
    });

    clock.advance(5 * MIN);
    const young = await reserve(); // its create may still be in flight

    clock.set(T0 + 2 * HOUR);
    const report = await g.sweepOrphans(inventory, { graceMs: 2 * HOUR - MIN });

    expect(report.listed).toBe(6);
    expect(report.adopted).toEqual([{ sandboxId: interruptedSb, leaseId: interrupted.leaseId }]);
    expect(g.getLease(interrupted.leaseId)).toMatchObject({ status: "active", sandboxId: interruptedSb });
    expect(report.settled).toEqual([
      { leaseId: died.leaseId, chargedUsd: expect.closeTo(SMALL_HOURLY, 6), durationMs: HOUR },
    ]);
    expect(g.getLease(died.leaseId)!.settleReason).toBe("orphan sweep: no sandbox carries this lease");
    expect(report.terminated.map((t) => [t.sandboxId, t.reason])).toEqual([
      [settledSb, "its lease was settled (closed)"],
      [unknownSb, "no lease with this id in the ledger"],
    ]);
    expect(report.foreign).toEqual([foreignSb]);
    expect(report.errors).toEqual([{ sandboxId: stuckSb, message: `backend refused to stop ${stuckSb}` }]);

    expect(inventory.alive(healthySb)).toBe(true);
    expect(inventory.alive(interruptedSb)).toBe(true);
    expect(inventory.alive(settledSb)).toBe(false);
    expect(inventory.alive(unknownSb)).toBe(false);
    expect(inventory.alive(foreignSb)).toBe(true);
    expect(g.getLease(young.leaseId)!.status).toBe("reserved");
    expect(g.getLease(otherProvider.leaseId)!.status).toBe("reserved");
    expect(events.filter((e) => e.type === "orphan")).toHaveLength(2);

    // A second sweep finds nothing new to do.
    const again = await g.sweepOrphans(inventory, { graceMs: HOUR * 10 });
    expect([again.settled, again.terminated, again.adopted]).toEqual([[], [], []]);
  });

  it("terminates a second sandbox created for a lease that is active on another one", async () => {
    const inventory = new ProcessInventory("modal");
    cleanups.push(() => inventory.dispose());
    const g = costGuard({ enforceIntervalMs: 0 }, { logger: silentLogger });
    cleanups.push(() => g.close());
    const lease = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    const first = inventory.create(lease.tags);
    const retry = inventory.create(lease.tags);
    await g.activate(lease.leaseId, retry);
    const report = await g.sweepOrphans(inventory);
    expect(report.terminated).toEqual([
      { sandboxId: first, leaseId: lease.leaseId, reason: `its lease is active on sandbox ${retry}` },
    ]);
    expect(inventory.alive(retry)).toBe(true);
  });
});
