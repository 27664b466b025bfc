import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CostHooks, PluginRegistry, type RuntimeError, silentLogger } from "@agent-runtime/runtime-core";
import { afterEach, describe, expect, expectTypeOf, it } from "vitest";
import { rejection } from "../test/support/rejection.js";
import { tempDir } from "../test/temp-dir.js";
import { ManualClock } from "./clock.js";
import type { CostGuard } from "./guard.js";
import type { CostGuardOptions } from "./options.js";
import { costGuard, costGuardPlugin } from "./plugin.js";
import { LEASE_TAG_KEY } from "./sweeper.js";

const T0 = Date.parse("2026-10-01T10:00:00Z");
const HOUR = 3_600_000;
/** 1 core / 2 GiB capped at 1 core: $0.189936 per hour at request and in the worst case. */
const SMALL = { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 };
const SMALL_HOURLY = 0.00003942 * 3600 + 2 * 0.00000667 * 3600;

const open: CostGuard[] = [];
function guard(
  options: CostGuardOptions = {},
  clock = new ManualClock(T0),
): { g: CostGuard; clock: ManualClock } {
  const g = costGuard({ enforceIntervalMs: 0, ...options }, { clock, logger: silentLogger });
  open.push(g);
  return { g, clock };
}
afterEach(() => {
  for (const g of open.splice(0)) g.close();
});

describe("leases", () => {
  it("reserve writes the worst case before create; activate, heartbeat and settle charge the real duration", async () => {
    const { g, clock } = guard();
    const lease = await g.reserve({
      spec: { provider: "modal", cpuCores: 1, memoryMiB: 2048 },
      scope: { userId: "alice" },
      lifetimeMs: HOUR,
    });
    expect(lease.leaseId).toMatch(new RegExp(`^cg-${g.ledgerId}-[0-9a-f]{32}$`));
    expect(lease.tags).toEqual({ [LEASE_TAG_KEY]: lease.leaseId });
    expect(LEASE_TAG_KEY).toBe("agent-runtime.lease");
    expect(lease.reservedUsd).toBeCloseTo(2.460528, 6); // 17 cores: no CPU limit
    expect(lease.expiresAtMs).toBe(T0 + HOUR);
    expect(g.getLease(lease.leaseId)).toMatchObject({
      status: "reserved",
      scope: { userId: "alice" },
      heartbeatAtMs: T0,
    });

    clock.advance(1000);
    await g.activate(lease.leaseId, "sb-1");
    await g.activate(lease.leaseId, "sb-1"); // idempotent
    clock.advance(1000);
    await g.heartbeat(lease.leaseId);
    expect(g.getLease(lease.leaseId)).toMatchObject({
      status: "active",
      sandboxId: "sb-1",
      activatedAtMs: T0 + 1000,
      heartbeatAtMs: T0 + 2000,
    });

    clock.advance(30 * 60_000 - 2000);
    const s = await g.settle(lease.leaseId, { reason: "runtime closed" });
    expect(s).toMatchObject({
      leaseId: lease.leaseId,
      durationMs: 30 * 60_000,
      alreadySettled: false,
      reason: "runtime closed",
    });
    expect(s.chargedUsd).toBeCloseTo(SMALL_HOURLY / 2, 9);
    expect(s.releasedUsd).toBeCloseTo(lease.reservedUsd - s.chargedUsd, 9);
    expect(g.openLeases()).toEqual([]);
  });

  it("settling twice charges once; unknown and settled leases give clear errors", async () => {
    const { g, clock } = guard({ budgets: [{ limitUsd: 10 }] });
    const lease = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    clock.advance(HOUR);
    const first = await g.settle(lease.leaseId);
    const second = await g.settle(lease.leaseId, { reason: "again" });
    expect(second).toMatchObject({
      alreadySettled: true,
      chargedUsd: first.chargedUsd,
      reason: "closed",
      releasedUsd: 0,
    });
    expect(g.budgetStatus()[0]!.spentUsd).toBeCloseTo(first.chargedUsd, 9);

    expect((await rejection(g.settle("cg-nope"))).code).toBe("NOT_FOUND");
    const hb = await rejection(g.heartbeat(lease.leaseId));
    expect(hb.code).toBe("FAILED_PRECONDITION");
    expect(hb.message).toContain("it was settled (closed)");
    expect((await rejection(g.activate(lease.leaseId, "sb"))).code).toBe("FAILED_PRECONDITION");
    expect((await rejection(g.heartbeat("cg-nope"))).code).toBe("NOT_FOUND");

    const other = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    await g.activate(other.leaseId, "sb-a");
    const twice = await rejection(g.activate(other.leaseId, "sb-b"));
    expect(twice.message).toContain("already active on sandbox sb-a");
    expect((await rejection(g.activate(other.leaseId, ""))).code).toBe("INVALID_ARGUMENT");
  });

  it("settle accepts a known real cost or end time; chargeAt worstCase charges the ceiling rate", async () => {
    const { g, clock } = guard();
    const a = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    clock.advance(10 * 60_000);
    expect((await g.settle(a.leaseId, { costUsd: 0.05 })).chargedUsd).toBe(0.05);
    const b = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    clock.advance(HOUR);
    expect((await g.settle(b.leaseId, { endedAtMs: T0 + 10 * 60_000 + 60_000 })).durationMs).toBe(60_000);
    expect((await rejection(g.settle(b.leaseId, { costUsd: -1 }))).code).toBe("INVALID_ARGUMENT");

    const { g: worst, clock: c2 } = guard({ chargeAt: "worstCase" });
    const w = await worst.reserve({
      spec: { provider: "modal", cpuCores: 1, memoryMiB: 2048 },
      lifetimeMs: HOUR,
    });
    c2.advance(HOUR);
    expect((await worst.settle(w.leaseId)).chargedUsd).toBeCloseTo(w.reservedUsd, 6);
  });

  it("rejects bad reservation requests, naming each field", async () => {
    const { g } = guard();
    const err = await rejection(g.reserve({ spec: SMALL, lifetimeMs: -5, scope: { userId: "" } }));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toContain("lifetimeMs:");
    expect(err.message).toContain("scope.userId:");
    expect(
      (await rejection(g.reserve({ spec: { ...SMALL, gpu: "V100" }, lifetimeMs: HOUR }))).message,
    ).toContain("Unknown GPU type");
  });
});

describe("budgets", () => {
  it("refuses with BUDGET_EXCEEDED giving spent, reserved, limit and requested, and writes nothing", async () => {
    const { g, clock } = guard({
      budgets: [{ name: "daily-user", scope: "user", period: "daily", limitUsd: 0.5 }],
    });
    const a = await g.reserve({ spec: SMALL, scope: { userId: "alice" }, lifetimeMs: HOUR });
    clock.advance(HOUR);
    await g.settle(a.leaseId);
    await g.reserve({ spec: SMALL, scope: { userId: "alice" }, lifetimeMs: HOUR });
    const err = await rejection(g.reserve({ spec: SMALL, scope: { userId: "alice" }, lifetimeMs: HOUR }));
    expect(err.code).toBe("BUDGET_EXCEEDED");
    expect(err.message).toContain('budget "daily-user" (user:alice, daily 2026-10-01 UTC)');
    expect(err.message).toContain("spent $0.189936 + reserved $0.189936 + requested $0.189936 > limit $0.50");
    expect(err.details).toMatchObject({
      budget: "daily-user",
      scopeKey: "user:alice",
      periodKey: "day:2026-10-01",
      limitUsd: 0.5,
    });
    expect(g.openLeases()).toHaveLength(1);
    // Other users have their own budget; leases without a user are not charged to per-user budgets.
    await g.reserve({ spec: SMALL, scope: { userId: "bob" }, lifetimeMs: HOUR });
    await g.reserve({ spec: SMALL, scope: {}, lifetimeMs: 10 * HOUR });
  });

  it("scopes: global, a named user, each session, each tag value and one tag value", async () => {
    const { g } = guard({
      budgets: [
        { scope: "global", limitUsd: 1.2 },
        { scope: "user:carol", limitUsd: 0.2 },
        { scope: "session", limitUsd: 0.3 },
        { scope: "tag:team", limitUsd: 0.5 },
        { scope: "tag:team=ml", limitUsd: 0.2 },
      ],
    });
    const r = (scope: Record<string, unknown>) => g.reserve({ spec: SMALL, scope, lifetimeMs: HOUR });
    await r({ userId: "carol" });
    expect((await rejection(r({ userId: "carol" }))).details?.budget).toBe("user:carol/total");
    await r({ userId: "dave", sessionId: "s1" });
    expect((await rejection(r({ sessionId: "s1" }))).details?.budget).toBe("session/total");
    await r({ sessionId: "s2", tags: { team: "ml" } });
    expect((await rejection(r({ tags: { team: "ml" } }))).details?.budget).toBe("tag:team=ml/total");
    await r({ tags: { team: "web" } });
    await r({ tags: { team: "web" } });
    expect((await rejection(r({ tags: { team: "web" } }))).details?.scopeKey).toBe("tag:team=web");
    await r({});
    expect((await rejection(r({}))).details?.budget).toBe("global/total");
    const status = g.budgetStatus();
    expect(status.find((s) => s.budget === "global/total")).toMatchObject({
      scope: "global",
      period: "total",
    });
    expect(status.find((s) => s.budget === "global/total")!.reservedUsd).toBeCloseTo(6 * SMALL_HOURLY, 6);
    expect(status.filter((s) => s.budget === "tag:team/total").map((s) => s.scope)).toEqual([
      "tag:team=ml",
      "tag:team=web",
    ]);
  });

  it("daily and monthly periods roll over at UTC midnight; a lease counts in the period it was reserved in", async () => {
    const clock = new ManualClock(Date.parse("2026-10-31T23:00:00Z"));
    const { g } = guard(
      {
        budgets: [
          { name: "day", period: "daily", limitUsd: 0.3 },
          { name: "month", period: "monthly", limitUsd: 0.5 },
        ],
      },
      clock,
    );
    const late = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    expect((await rejection(g.reserve({ spec: SMALL, lifetimeMs: HOUR }))).details?.budget).toBe("day");
    clock.advance(HOUR + 1); // 2026-11-01T00:00:00.001Z
    const next = await g.reserve({ spec: SMALL, lifetimeMs: HOUR }); // new day and new month
    await g.settle(late.leaseId);
    const status = g.budgetStatus();
    expect(status.find((s) => s.budget === "day")).toMatchObject({
      period: "daily 2026-11-01 UTC",
      spentUsd: 0,
    });
    expect(status.find((s) => s.budget === "month")).toMatchObject({ period: "monthly 2026-11 UTC" });
    expect(g.getLease(late.leaseId)!.day).toBe("2026-10-31");
    expect(g.getLease(next.leaseId)!.month).toBe("2026-11");
    clock.set(Date.parse("2026-11-15T12:00:00Z"));
    await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    clock.set(Date.parse("2026-11-16T12:00:00Z"));
    expect((await rejection(g.reserve({ spec: SMALL, lifetimeMs: HOUR }))).details?.budget).toBe("month");
    clock.set(Date.parse("2026-12-01T00:00:00Z"));
    await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
  });

  it("extend re-checks the budget and grows the reservation", async () => {
    const { g } = guard({ budgets: [{ limitUsd: 0.5 }] });
    const lease = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    const ext = await g.extend(lease.leaseId, HOUR);
    expect(ext.lifetimeMs).toBe(2 * HOUR);
    expect(ext.expiresAtMs).toBe(T0 + 2 * HOUR);
    expect(ext.reservedUsd).toBeCloseTo(2 * SMALL_HOURLY, 6);
    const err = await rejection(g.extend(lease.leaseId, HOUR));
    expect(err.code).toBe("BUDGET_EXCEEDED");
    expect(err.message).toMatch(/^Extending lease cg-/);
    expect(g.getLease(lease.leaseId)!.lifetimeMs).toBe(2 * HOUR);
    expect((await rejection(g.extend(lease.leaseId, 0))).code).toBe("INVALID_ARGUMENT");
  });

  it("warn budgets never refuse", async () => {
    const { g } = guard({ budgets: [{ limitUsd: 0.1, enforcement: "warn" }] });
    await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    expect(g.budgetStatus()[0]!.remainingUsd).toBeLessThan(0);
  });

  it("1,000 concurrent reservations against one budget never exceed it", async () => {
    const { g } = guard({ budgets: [{ limitUsd: SMALL_HOURLY * 100.5 }] });
    const results = await Promise.allSettled(
      Array.from({ length: 1000 }, (_, i) =>
        g.reserve({ spec: SMALL, scope: { userId: `u${i}` }, lifetimeMs: HOUR }),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter(
      (r) => r.status === "rejected" && (r.reason as RuntimeError).code === "BUDGET_EXCEEDED",
    );
    expect(ok).toHaveLength(100);
    expect(refused).toHaveLength(900);
    const [status] = g.budgetStatus();
    expect(status!.reservedUsd).toBeLessThanOrEqual(status!.limitUsd);
    expect(g.openLeases()).toHaveLength(100);
  });

  it("group-commits concurrent calls: one failing call does not undo the others", async () => {
    const { g } = guard({ budgets: [{ limitUsd: 1 }] });
    const first = await g.reserve({ spec: SMALL, lifetimeMs: HOUR });
    const results = await Promise.allSettled([
      g.reserve({ spec: SMALL, scope: { userId: "a" }, lifetimeMs: HOUR }),
      g.reserve({ spec: { ...SMALL, gpu: "H100:9" }, lifetimeMs: HOUR }),
      g.settle("cg-missing"),
      g.settle(first.leaseId),
      g.heartbeat(first.leaseId),
      g.reserve({ spec: SMALL, scope: { userId: "b" }, lifetimeMs: 10 * HOUR }),
      g.reserve({ spec: SMALL, scope: { userId: "c" }, lifetimeMs: HOUR }),
    ]);
    expect(results.map((r) => (r.status === "fulfilled" ? "ok" : (r.reason as RuntimeError).code))).toEqual([
      "ok",
      "INVALID_ARGUMENT",
      "NOT_FOUND",
      "ok",
      "FAILED_PRECONDITION",
      "BUDGET_EXCEEDED",
      "ok",
    ]);
    expect(
      g
        .openLeases()
        .map((l) => l.scope.userId)
        .sort(),
    ).toEqual(["a", "c"]);
    expect(g.budgetStatus()[0]!.reservedUsd).toBeCloseTo(2 * SMALL_HOURLY, 6);
  });

  it("limits reservations per minute to stop create loops", async () => {
    const { g, clock } = guard({ maxReservationsPerMinute: 3 });
    for (let i = 0; i < 3; i++) await g.reserve({ spec: SMALL, lifetimeMs: 1000 });
    const err = await rejection(g.reserve({ spec: SMALL, lifetimeMs: 1000 }));
    expect(err.code).toBe("RATE_LIMITED");
    expect(err.message).toContain("maxReservationsPerMinute (3)");
    clock.advance(60_001);
    await g.reserve({ spec: SMALL, lifetimeMs: 1000 });
  });
});

describe("file ledger", () => {
  it("persists leases across guards and rebuilds counters when budgets change", async () => {
    const dir = tempDir("cg-ledger-");
    const ledgerPath = join(dir, "cost.db");
    const { g: first, clock } = guard({ ledgerPath });
    const a = await first.reserve({ spec: SMALL, scope: { userId: "erin" }, lifetimeMs: HOUR });
    clock.advance(HOUR);
    await first.settle(a.leaseId);
    const open1 = await first.reserve({ spec: SMALL, scope: { userId: "erin" }, lifetimeMs: HOUR });
    first.close();

    // A budget added later sees the spend and reservations made before it existed.
    const { g: second } = guard({ ledgerPath, budgets: [{ scope: "user", limitUsd: 0.5 }] }, clock);
    expect(second.ledgerId).toBe(first.ledgerId);
    expect(second.budgetStatus()).toEqual([
      expect.objectContaining({
        scope: "user:erin",
        reservedUsd: expect.closeTo(SMALL_HOURLY, 6),
        spentUsd: expect.closeTo(SMALL_HOURLY, 6),
      }),
    ]);
    expect(
      (await rejection(second.reserve({ spec: SMALL, scope: { userId: "erin" }, lifetimeMs: HOUR }))).code,
    ).toBe("BUDGET_EXCEEDED");
    await second.settle(open1.leaseId);
    await second.reserve({ spec: SMALL, scope: { userId: "erin" }, lifetimeMs: HOUR });
  });

  it("gives clear errors for a missing directory, a file that is not a ledger and a closed guard", async () => {
    const dir = tempDir("cg-bad-");
    const missing = (() => {
      try {
        costGuard({ ledgerPath: join(dir, "no", "such", "cost.db"), enforceIntervalMs: 0 });
      } catch (err) {
        return err as RuntimeError;
      }
    })();
    expect(missing?.code).toBe("NOT_FOUND");
    expect(missing?.message).toContain("does not exist");
    const junk = join(dir, "junk.db");
    writeFileSync(junk, "this is not sqlite ".repeat(100));
    expect(() => costGuard({ ledgerPath: junk, enforceIntervalMs: 0 })).toThrowError(
      /is not a cost-guard ledger/,
    );
    const { g } = guard();
    g.close();
    expect((await rejection(g.reserve({ spec: SMALL, lifetimeMs: 1000 }))).message).toContain("closed");
  });
});

describe("options and plugin", () => {
  it("reports every bad option as path: message and names renamed options", () => {
    const bad = (o: unknown): RuntimeError => {
      try {
        costGuard(o as CostGuardOptions);
      } catch (err) {
        return err as RuntimeError;
      }
      throw new Error("expected a throw");
    };
    expect(bad({ dbPath: "x.db" }).message).toContain('dbPath: this option is now "ledgerPath"');
    const many = bad({
      budgets: [
        { scope: "team", limitUsd: 1 },
        { limitUsd: -1, period: "weekly" },
      ],
      chargeAt: "max",
    });
    expect(many.code).toBe("INVALID_ARGUMENT");
    expect(many.message).toContain('budgets[0].scope: unknown scope "team"');
    expect(many.message).toContain("budgets[1].limitUsd:");
    expect(many.message).toContain("budgets[1].period:");
    expect(many.message).toContain("chargeAt:");
    expect(bad({ budgets: [{ limitUsd: 1 }, { limitUsd: 2 }] }).message).toContain(
      'duplicate budget name "global/total"',
    );
    expect(bad({ budgets: [{ scope: "tag:", limitUsd: 1 }] }).message).toContain("tag scope needs a key");
  });

  it("is a cost plugin whose instance implements runtime-core's CostHooks", async () => {
    expect(costGuardPlugin).toMatchObject({ name: "cost-guard", kind: "cost" });
    const registry = new PluginRegistry().register(costGuardPlugin);
    const hooks = registry.create(
      "cost",
      "cost-guard",
      { enforceIntervalMs: 0, budgets: [{ limitUsd: 1 }] },
      {
        logger: silentLogger,
        redactor: { redact: (t) => t, redactDeep: (v) => v, isEmpty: true },
      },
    ) as CostHooks & { close(): void };
    const lease = await hooks.reserve({ spec: SMALL, scope: {}, lifetimeMs: HOUR });
    await hooks.activate(lease.leaseId, "sb");
    await hooks.heartbeat(lease.leaseId);
    const unregister = hooks.onTerminate!(lease.leaseId, async () => {});
    unregister();
    expect((await hooks.settle(lease.leaseId)).leaseId).toBe(lease.leaseId);
    hooks.close();
    expect(() =>
      registry.create(
        "cost",
        "cost-guard",
        { budgets: "x" },
        { logger: silentLogger, redactor: { redact: (t) => t, redactDeep: (v) => v, isEmpty: true } },
      ),
    ).toThrowError(/budgets:/);
    expectTypeOf<CostGuard>().toExtend<CostHooks>();
  });
});
