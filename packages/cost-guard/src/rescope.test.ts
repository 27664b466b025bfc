import { join } from "node:path";
import { silentLogger } from "@agent-runtime/runtime-core";
import { afterEach, describe, expect, it } from "vitest";
import { rejection } from "../test/support/rejection.js";
import { tempDir } from "../test/temp-dir.js";
import { ManualClock } from "./clock.js";
import { isBudgetExceededError } from "./errors.js";
import type { CostGuard } from "./guard.js";
import type { CostGuardOptions } from "./options.js";
import { costGuard } from "./plugin.js";

const T0 = Date.parse("2026-10-01T10:00:00Z");
const HOUR = 3_600_000;
const MIN = 60_000;
/** 1 core / 2 GiB capped at 1 core: $0.189936 reserved for an hour. */
const SMALL = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 };
const RESERVED = (0.00003942 + 2 * 0.00000667) * 3600;
const POOL = { sessionId: "pool" };
const ALICE = { userId: "alice", sessionId: "s-1", tags: { team: "ml" } };

const open: CostGuard[] = [];
afterEach(() => {
  for (const g of open.splice(0)) g.close();
});
function guard(options: CostGuardOptions = {}, clock = new ManualClock(T0)): CostGuard {
  const g = costGuard({ enforceIntervalMs: 0, ...options }, { clock, logger: silentLogger });
  open.push(g);
  return g;
}

/** What the budget counters hold for `budget` as a request of `scope` sees them (reserved, in USD). */
function reservedIn(g: CostGuard, scope: object, budget: string): number | undefined {
  return g.checkBudget({ spec: SMALL, scope, lifetimeMs: 1000 }).budgets.find((b) => b.budget === budget)
    ?.reservedUsd;
}

const BUDGETS = [
  { name: "per-session", scope: "session", limitUsd: 10 },
  { name: "per-user", scope: "user", period: "daily" as const, limitUsd: 1 },
  { name: "team-ml", scope: "tag:team=ml", limitUsd: 5 },
  { name: "all", scope: "global", limitUsd: 100 },
];

describe("rescope: a pooled sandbox's lease handed out to a user", () => {
  it("moves the reservation to the new scope's budgets, counts as a heartbeat, and reports charge the new scope", async () => {
    const clock = new ManualClock(T0);
    const g = guard({ budgets: BUDGETS }, clock);
    const lease = await g.reserve({ spec: SMALL, scope: POOL, lifetimeMs: HOUR });
    await g.activate(lease.leaseId, "sb-pool-1");
    expect(reservedIn(g, POOL, "per-session")).toBeCloseTo(RESERVED, 9);

    clock.advance(5 * MIN);
    await g.rescope(lease.leaseId, ALICE);

    expect(g.getLease(lease.leaseId)).toMatchObject({
      status: "active",
      sandboxId: "sb-pool-1",
      scope: ALICE,
      heartbeatAtMs: T0 + 5 * MIN,
      reservedUsd: lease.reservedUsd,
    });
    expect(reservedIn(g, POOL, "per-session")).toBe(0);
    for (const budget of ["per-session", "per-user", "team-ml", "all"]) {
      expect(reservedIn(g, ALICE, budget), budget).toBeCloseTo(RESERVED, 9);
    }
    const status = g.budgetStatus().map((r) => [r.budget, r.scope, Number(r.reservedUsd.toFixed(6))]);
    expect(status).toEqual(
      expect.arrayContaining([
        ["per-user", "user:alice", Number(RESERVED.toFixed(6))],
        ["per-session", "session:s-1", Number(RESERVED.toFixed(6))],
      ]),
    );
    expect(status.some(([, scope]) => scope === "session:pool")).toBe(false);

    clock.advance(25 * MIN);
    const s = await g.settle(lease.leaseId);
    expect(s.durationMs).toBe(30 * MIN); // billed from the reservation: the pool's time is the user's now
    expect(g.report({ by: "user" })).toEqual([expect.objectContaining({ key: "alice", leases: 1 })]);
    expect(g.report({ by: "session" })).toEqual([expect.objectContaining({ key: "s-1", leases: 1 })]);
    expect(reservedIn(g, ALICE, "per-user")).toBe(0);
    expect(g.checkBudget({ spec: SMALL, scope: ALICE, lifetimeMs: 1000 }).budgets[0]!.spentUsd).toBeCloseTo(
      s.chargedUsd,
      9,
    );
  });

  it("refuses a hand-out to a user whose budget is exhausted with BUDGET_EXCEEDED and leaves the lease as it was", async () => {
    const clock = new ManualClock(T0);
    const g = guard({ budgets: [{ name: "per-user", scope: "user", limitUsd: 0.3 }] }, clock);
    await g.reserve({ spec: SMALL, scope: { userId: "alice" }, lifetimeMs: HOUR }); // alice holds $0.19 of $0.30
    const pooled = await g.reserve({ spec: SMALL, scope: POOL, lifetimeMs: HOUR });
    await g.activate(pooled.leaseId, "sb-pool-1");
    const before = g.getLease(pooled.leaseId);

    clock.advance(MIN);
    const err = await rejection(g.rescope(pooled.leaseId, { userId: "alice", sessionId: "s-9" }));
    expect(isBudgetExceededError(err)).toBe(true);
    expect(err.code).toBe("BUDGET_EXCEEDED");
    expect(err.details).toMatchObject({ budget: "per-user", scopeKey: "user:alice", limitUsd: 0.3 });
    expect((err.details as { requestedUsd: number }).requestedUsd).toBeCloseTo(pooled.reservedUsd, 9);
    expect((err.details as { reservedUsd: number }).reservedUsd).toBeCloseTo(RESERVED, 9);
    expect(err.message).toContain(`Moving lease ${pooled.leaseId} to user alice, session s-9 refused`);
    expect(err.message).toContain("The lease keeps its scope (session pool)");

    expect(g.getLease(pooled.leaseId)).toEqual(before); // scope, heartbeat, reservation: unchanged
    expect(reservedIn(g, { userId: "alice" }, "per-user")).toBeCloseTo(RESERVED, 9);
    // The lease is still open and can go to someone with room.
    await g.rescope(pooled.leaseId, { userId: "bob" });
    expect(g.getLease(pooled.leaseId)!.scope).toEqual({ userId: "bob" });
    expect(reservedIn(g, { userId: "bob" }, "per-user")).toBeCloseTo(RESERVED, 9);
  });

  it("does not check again the budgets both scopes share (the lease already counts in them)", async () => {
    const g = guard({ budgets: [{ name: "all", limitUsd: 0.2 }] });
    const lease = await g.reserve({ spec: SMALL, scope: POOL, lifetimeMs: HOUR });
    expect(g.checkBudget({ spec: SMALL, scope: {}, lifetimeMs: HOUR }).fits).toBe(false); // the global budget is full
    await g.rescope(lease.leaseId, { userId: "alice" });
    expect(reservedIn(g, {}, "all")).toBeCloseTo(RESERVED, 9); // held once, not twice, not released
  });

  it("refuses settled and unknown leases and malformed scopes", async () => {
    const g = guard({ budgets: BUDGETS });
    const lease = await g.reserve({ spec: SMALL, scope: POOL, lifetimeMs: HOUR });

    const misspelled = await rejection(g.rescope(lease.leaseId, { user: "alice" } as never));
    expect(misspelled.code).toBe("INVALID_ARGUMENT");
    expect(misspelled.message).toContain("Invalid lease scope");
    expect(misspelled.message).toMatch(/scope: Unrecognized key.*"user"/);
    const empty = await rejection(g.rescope(lease.leaseId, { userId: "" }));
    expect(empty.message).toContain("scope.userId:");
    expect(g.getLease(lease.leaseId)!.scope).toEqual(POOL);

    const unknown = await rejection(g.rescope(`cg-${g.ledgerId}-nope`, { userId: "alice" }));
    expect(unknown.code).toBe("NOT_FOUND");

    await g.settle(lease.leaseId);
    const settled = await rejection(g.rescope(lease.leaseId, { userId: "alice" }));
    expect(settled.code).toBe("FAILED_PRECONDITION");
    expect(settled.message).toContain(`Cannot rescope lease ${lease.leaseId}: it was settled (closed)`);
    expect(g.report({ by: "session" })).toEqual([expect.objectContaining({ key: "pool" })]);
  });

  it("a settle committed first wins over a rescope queued behind it in the same group commit", async () => {
    const g = guard();
    const lease = await g.reserve({ spec: SMALL, scope: POOL, lifetimeMs: HOUR });
    const [settled, moved] = await Promise.allSettled([
      g.settle(lease.leaseId, { reason: "pool drained" }),
      g.rescope(lease.leaseId, ALICE),
    ]);
    expect(settled.status).toBe("fulfilled");
    expect(moved).toMatchObject({ status: "rejected", reason: { code: "FAILED_PRECONDITION" } });
    expect(g.report({ by: "user" })).toEqual([expect.objectContaining({ key: "(none)" })]);
  });

  it("is stored in the ledger: a reopened guard (counters rebuilt from the leases) sees the new scope", async () => {
    const ledgerPath = join(tempDir("cg-rescope-"), "cost.db");
    const clock = new ManualClock(T0);
    const first = guard(
      { ledgerPath, budgets: [{ name: "per-session", scope: "session", limitUsd: 1 }] },
      clock,
    );
    const lease = await first.reserve({ spec: SMALL, scope: POOL, lifetimeMs: HOUR });
    await first.rescope(lease.leaseId, ALICE);
    first.close();

    // A new budget shape makes the guard rebuild every counter from the lease rows.
    const budgets = [
      { name: "per-session", scope: "session", limitUsd: 1 },
      { name: "per-user", scope: "user", limitUsd: 1 },
    ];
    const second = guard({ ledgerPath, budgets }, clock);
    expect(second.getLease(lease.leaseId)!.scope).toEqual(ALICE);
    expect(reservedIn(second, ALICE, "per-user")).toBeCloseTo(RESERVED, 9);
    expect(reservedIn(second, ALICE, "per-session")).toBeCloseTo(RESERVED, 9);
    expect(reservedIn(second, POOL, "per-session")).toBe(0);
    clock.advance(10 * MIN);
    await second.settle(lease.leaseId);
    expect(second.report({ by: "user" }).map((r) => r.key)).toEqual(["alice"]);
  });
});
