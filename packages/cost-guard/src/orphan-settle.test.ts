import { join } from "node:path";
import { silentLogger } from "@agent-runtime/runtime-core";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../test/temp-dir.js";
import { ManualClock } from "./clock.js";
import { isBudgetExceededError } from "./errors.js";
import type { CostGuard } from "./guard.js";
import type { CostGuardOptions } from "./options.js";
import { costGuard } from "./plugin.js";

const T0 = Date.parse("2026-10-01T10:00:00Z");
const HOUR = 3_600_000;
const MIN = 60_000;
/** 1 core / 2 GiB capped at 1 core: the same rate at request and in the worst case. */
const SMALL = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 };
const RATE_PER_MS = (0.00003942 + 2 * 0.00000667) / 1000;

const open: CostGuard[] = [];
afterEach(() => {
  for (const g of open.splice(0)) g.close();
});
function guard(ledgerPath: string, clock: ManualClock, options: CostGuardOptions = {}): CostGuard {
  const g = costGuard({ ledgerPath, enforceIntervalMs: 0, ...options }, { clock, logger: silentLogger });
  open.push(g);
  return g;
}

describe("settling leases whose sandbox vanished while the host was down", () => {
  it("settleOrphan settles an active lease found after a restart, at the end time given, once", async () => {
    const ledgerPath = join(tempDir("cg-orphan-"), "cost.db");
    const clock = new ManualClock(T0);
    const before = guard(ledgerPath, clock, { budgets: [{ limitUsd: 10 }] });
    const lease = await before.reserve({ spec: SMALL, scope: { sessionId: "s1" }, lifetimeMs: HOUR });
    await before.activate(lease.leaseId, "sb-1");
    before.close(); // the host goes down

    clock.advance(20 * MIN);
    const after = guard(ledgerPath, clock, { budgets: [{ limitUsd: 10 }] });
    expect(after.openLeases().map((l) => [l.leaseId, l.status])).toEqual([[lease.leaseId, "active"]]);
    const s = await after.settleOrphan(lease.leaseId, {
      endedAtMs: T0 + 5 * MIN,
      reason: "sandbox gone at restart",
    });
    expect(s).toMatchObject({ leaseId: lease.leaseId, alreadySettled: false, durationMs: 5 * MIN });
    expect(s.chargedUsd).toBeCloseTo(RATE_PER_MS * 5 * MIN, 9);
    expect(s.releasedUsd).toBeCloseTo(lease.reservedUsd - s.chargedUsd, 9);
    expect(after.getLease(lease.leaseId)).toMatchObject({
      status: "settled",
      settleReason: "sandbox gone at restart",
    });
    expect(after.budgetStatus()[0]).toMatchObject({ reservedUsd: 0, spentUsd: s.chargedUsd });
    const again = await after.settleOrphan(lease.leaseId, { endedAtMs: T0 + 10 * MIN });
    expect(again).toMatchObject({ alreadySettled: true, chargedUsd: s.chargedUsd });
    await expect(after.settleOrphan("cg-nope")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("defaults the end to the latest the sandbox can have run, and clamps end times to [reserved, now]", async () => {
    const ledgerPath = join(tempDir("cg-orphan-"), "cost.db");
    const clock = new ManualClock(T0);
    const g = guard(ledgerPath, clock);
    const a = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    const b = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    const c = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    const d = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    clock.advance(30 * MIN);
    expect((await g.settleOrphan(a.leaseId)).durationMs).toBe(30 * MIN); // now < reserved + lifetime
    expect((await g.settleOrphan(b.leaseId, { endedAtMs: T0 + 10 * HOUR })).durationMs).toBe(30 * MIN);
    expect((await g.settleOrphan(c.leaseId, { endedAtMs: T0 - HOUR })).durationMs).toBe(0);
    clock.advance(2 * HOUR);
    expect((await g.settleOrphan(d.leaseId)).durationMs).toBe(HOUR); // the provider stops it at its lifetime
  });

  it("settleOrphans settles every open lease of a session (e.g. at DELETE of the session), and needs a filter", async () => {
    const ledgerPath = join(tempDir("cg-orphan-"), "cost.db");
    const clock = new ManualClock(T0);
    const g = guard(ledgerPath, clock);
    const s1a = await g.reserve({ spec: SMALL, scope: { sessionId: "s1" }, lifetimeMs: HOUR });
    const s1b = await g.reserve({ spec: SMALL, scope: { sessionId: "s1", userId: "u" }, lifetimeMs: HOUR });
    const s2 = await g.reserve({ spec: SMALL, scope: { sessionId: "s2" }, lifetimeMs: HOUR });
    await g.activate(s1a.leaseId, "sb-a");
    clock.advance(MIN);
    const settled = await g.settleOrphans(
      { sessionId: "s1" },
      { endedAtMs: T0 + MIN, reason: "session deleted" },
    );
    expect(settled.map((s) => s.leaseId).sort()).toEqual([s1a.leaseId, s1b.leaseId].sort());
    expect(
      settled.every((s) => !s.alreadySettled && s.durationMs === MIN && s.reason === "session deleted"),
    ).toBe(true);
    expect(g.openLeases().map((l) => l.leaseId)).toEqual([s2.leaseId]);
    expect(await g.settleOrphans({ sessionId: "s1" })).toEqual([]);
    expect(await g.settleOrphans({ sandboxId: "nope" })).toEqual([]);
    await expect(g.settleOrphans({})).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

describe("checkBudget", () => {
  it("answers whether a session fits without reserving, with the numbers BUDGET_EXCEEDED carries", async () => {
    const ledgerPath = join(tempDir("cg-check-"), "cost.db");
    const clock = new ManualClock(T0);
    const hourly = RATE_PER_MS * HOUR;
    const g = guard(ledgerPath, clock, {
      budgets: [
        { name: "per-user", scope: "user", period: "daily", limitUsd: 2.5 * hourly },
        { name: "watch", scope: "global", period: "total", limitUsd: 0.1, enforcement: "warn" },
      ],
    });
    const request = { spec: SMALL, scope: { userId: "alice" }, lifetimeMs: HOUR };
    const ok = g.checkBudget(request);
    expect(ok.fits).toBe(true);
    expect(ok.exceeded).toBeUndefined();
    expect(ok.requestedUsd).toBeCloseTo(hourly, 6);
    expect(ok.budgets.map((b) => [b.budget, b.fits])).toEqual([
      ["per-user", true],
      ["watch", true],
    ]);
    await g.reserve(request);
    await g.reserve(request);
    expect(g.budgetStatus().find((b) => b.budget === "per-user")?.reservedUsd).toBeCloseTo(2 * hourly, 6);

    const no = g.checkBudget(request);
    expect(no.fits).toBe(false);
    expect(no.budgets.find((b) => b.budget === "watch")?.fits).toBe(true); // warn budgets never refuse
    expect(no.budgets.find((b) => b.budget === "per-user")?.remainingUsd).toBeCloseTo(0.5 * hourly, 6);
    // Nothing was reserved by the checks.
    expect(g.budgetStatus().find((b) => b.budget === "per-user")?.reservedUsd).toBeCloseTo(2 * hourly, 6);

    const err = await g.reserve(request).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isBudgetExceededError(err)).toBe(true);
    if (!isBudgetExceededError(err)) return;
    expect(err.details).toEqual(no.exceeded);
    expect(err.details).toMatchObject({
      budget: "per-user",
      scopeKey: "user:alice",
      periodKey: "day:2026-10-01",
      spentUsd: 0,
      limitUsd: 2.5 * hourly,
    });
    expect(() => g.reserveSync(request)).toThrowError(expect.objectContaining({ code: "BUDGET_EXCEEDED" }));
    expect(() => g.checkBudget({ spec: SMALL, lifetimeMs: -1 })).toThrowError(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
  });
});
