import { silentLogger } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.js";
import { costGuard } from "./plugin.js";
import { formatRows } from "./report.js";

describe("reports", () => {
  it("group settled spend by provider and month, filtered by reservation time", async () => {
    const clock = new ManualClock(Date.parse("2026-09-30T23:00:00Z"));
    const g = costGuard(
      { enforceIntervalMs: 0, prices: { providers: { local: { cpuPerCoreSecondUsd: 0.001 } } } },
      { clock, logger: silentLogger },
    );
    try {
      for (const provider of ["modal", "local", "local"]) {
        const lease = await g.reserve({
          spec: { provider, cpuCores: 1, cpuLimitCores: 1, memoryMiB: 1024 },
          lifetimeMs: 3_600_000,
        });
        clock.advance(1_800_000);
        await g.settle(lease.leaseId);
      }
      const open = await g.reserve({
        spec: { provider: "modal", cpuCores: 1, memoryMiB: 1024 },
        lifetimeMs: 1000,
      });
      expect(g.report({ by: "provider" }).map((r) => [r.key, r.leases, r.hours])).toEqual([
        ["local", 2, 1],
        ["modal", 1, 0.5],
      ]);
      expect(g.report({ by: "month" }).map((r) => [r.key, r.leases])).toEqual([
        ["2026-09", 2],
        ["2026-10", 1],
      ]);
      expect(g.report({ by: "user", sinceMs: Date.parse("2026-10-01T00:00:00Z") })).toEqual([
        { key: "(none)", leases: 1, hours: 0.5, gpuHours: 0, costUsd: expect.closeTo(1.8, 9) },
      ]);
      expect(g.report({ by: "user", untilMs: Date.parse("2026-09-01T00:00:00Z") })).toEqual([]);
      expect(g.getLease(open.leaseId)!.status).toBe("reserved"); // open leases are not in reports
    } finally {
      g.close();
    }
  });

  it("format CSV with RFC 4180 quoting, JSON, and tables with right-aligned numbers", () => {
    const rows = [
      { user: 'a,"b"', costUsd: 1.5 },
      { user: "c", costUsd: 12.25 },
    ];
    expect(formatRows(rows, "csv")).toBe('user,costUsd\r\n"a,""b""",1.5\r\nc,12.25\r\n');
    expect(JSON.parse(formatRows(rows, "json"))).toEqual(rows);
    expect(formatRows(rows, "table")).toBe('user   costUsd\na,"b"   1.5000\nc      12.2500\n');
    expect(formatRows([], "table", ["user", "costUsd"])).toBe("user  costUsd\n");
  });
});
