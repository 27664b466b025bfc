import { execFile } from "node:child_process";
import { existsSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { silentLogger } from "@agent-runtime/runtime-core";
import { beforeAll, describe, expect, it } from "vitest";
import { costGuard, ManualClock } from "../src/index.js";
import { tempDir } from "./temp-dir.js";

const cli = join(import.meta.dirname, "..", "dist", "cli.js");
const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
async function agentRuntimeCost(
  args: string[],
  env: Record<string, string> = {},
  file = process.execPath,
): Promise<Result> {
  const argv = file === process.execPath ? [cli, ...args] : args;
  try {
    const { stdout, stderr } = await run(file, argv, {
      env: { PATH: process.env.PATH ?? "", SHLVL: "1", ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const HOUR = 3_600_000;
let db = "";

beforeAll(async () => {
  if (!existsSync(cli))
    throw new Error(`${cli} is missing: run \`pnpm build\` in packages/cost-guard first.`);
  db = join(tempDir("cg-cli-"), "cost.db");
  const clock = new ManualClock(Date.parse("2026-10-01T08:00:00Z"));
  const g = costGuard(
    {
      ledgerPath: db,
      enforceIntervalMs: 0,
      budgets: [
        { name: "monthly", scope: "global", period: "monthly", limitUsd: 100 },
        { name: "per-user", scope: "user", period: "daily", limitUsd: 10, enforcement: "terminate" },
      ],
    },
    { clock, logger: silentLogger },
  );
  const use = async (userId: string, sessionId: string, gpu: string | undefined, hours: number) => {
    const lease = await g.reserve({
      spec: { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048, ...(gpu ? { gpu } : {}) },
      scope: { userId, sessionId },
      lifetimeMs: hours * HOUR,
    });
    clock.advance(hours * HOUR);
    await g.settle(lease.leaseId);
  };
  await use("alice", "s1", "T4", 1); // 0.189936 + 0.5904
  await use("bob", "s2", undefined, 2); // 0.379872
  clock.set(Date.parse("2026-10-02T09:00:00Z"));
  await use("alice", "s3", "H100:2", 1); // 0.189936 + 7.8984
  await g.reserve({
    spec: { provider: "modal", cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 },
    scope: { userId: "alice" },
    lifetimeMs: HOUR,
  });
  g.close();
});

describe("agent-runtime-cost (built CLI, real process)", () => {
  it("report --by user --format json", async () => {
    const r = await agentRuntimeCost(["report", "--by", "user", "--format", "json", "--db", db]);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { user: string; leases: number; hours: number; costUsd: number }[];
    expect(rows.map((x) => [x.user, x.leases, x.hours])).toEqual([
      ["alice", 2, 2],
      ["bob", 1, 2],
    ]);
    expect(rows[0]!.costUsd).toBeCloseTo(0.189936 * 2 + 0.5904 + 7.8984, 6);
  });

  it("report --by day --since ... --format csv, with the database from the environment", async () => {
    const r = await agentRuntimeCost(["report", "--by", "day", "--since", "2026-10-02", "--format", "csv"], {
      AGENT_RUNTIME_COST_DB: db,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("day,leases,hours,gpuHours,costUsd\r\n2026-10-02,1,1,2,8.088336\r\n");
    const relative = await agentRuntimeCost([
      "report",
      "--by",
      "day",
      "--since",
      "20h",
      "--now",
      "2026-10-02T12:00Z",
      "--format",
      "csv",
      "--db",
      db,
    ]);
    expect(relative.stdout.trim().split("\r\n")).toHaveLength(2);
    const all = await agentRuntimeCost([
      "report",
      "--by",
      "day",
      "--format",
      "csv",
      "--db",
      db,
      "--until",
      "2026-10-02T00:00",
    ]);
    expect(all.stdout).toContain("2026-10-01,2,3,1,1.160208");
    expect(all.stdout).not.toContain("2026-10-02");
  });

  it("report --by gpu and --by session as aligned tables with a total", async () => {
    const gpu = await agentRuntimeCost(["report", "--by", "gpu", "--db", db]);
    expect(gpu.code).toBe(0);
    const lines = gpu.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^gpu\s+leases\s+hours\s+gpuHours\s+costUsd$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(["H100", "T4", "(none)", "TOTAL"]);
    expect(lines.at(-1)).toMatch(/^TOTAL\s+3\s+4\s+3\s+9\.2485$/);
    const session = await agentRuntimeCost(["report", "--by", "session", "--db", db, "--format", "json"]);
    expect((JSON.parse(session.stdout) as { session: string }[]).map((s) => s.session)).toEqual([
      "s3",
      "s1",
      "s2",
    ]);
  });

  it("budgets: limits, spent, reserved and remaining in the current period", async () => {
    const r = await agentRuntimeCost([
      "budgets",
      "--db",
      db,
      "--format",
      "json",
      "--now",
      "2026-10-02T12:00:00Z",
    ]);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(rows).toEqual([
      expect.objectContaining({
        budget: "monthly",
        scope: "global",
        period: "monthly 2026-10 UTC",
        limitUsd: 100,
        enforcement: "refuse",
      }),
      expect.objectContaining({
        budget: "per-user",
        scope: "user:alice",
        period: "daily 2026-10-02 UTC",
        enforcement: "terminate",
      }),
    ]);
    expect(rows[0]!.spentUsd).toBeCloseTo(9.248544, 6);
    expect(rows[0]!.reservedUsd).toBeCloseTo(0.189936, 6);
    expect(rows[0]!.remainingUsd).toBeCloseTo(100 - 9.248544 - 0.189936, 6);
    expect(rows[1]!.spentUsd).toBeCloseTo(8.088336, 6);
    const table = await agentRuntimeCost(["budgets", "--db", db, "--now", "2026-10-02T12:00:00Z"]);
    expect(table.stdout.split("\n")[0]).toMatch(
      /^budget\s+scope\s+period\s+enforcement\s+limitUsd\s+spentUsd\s+reservedUsd\s+remainingUsd\s+usedPercent$/,
    );
    expect(table.stdout).toMatch(
      /per-user\s+user:alice\s+daily 2026-10-02 UTC\s+terminate\s+10\.0000\s+8\.0883\s+0\.1899\s+1\.7217\s+82\.8/,
    );
  });

  it("runs through a symlinked bin with its shebang", async () => {
    const bin = join(tempDir("cg-bin-"), "agent-runtime-cost");
    symlinkSync(cli, bin);
    const r = await agentRuntimeCost(["--help"], {}, bin);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("agent-runtime-cost report --by user|session|day|month|gpu|provider");
  });

  it("explains usage errors (exit 2) and ledger errors (exit 1)", { timeout: 90_000 }, async () => {
    const cases = [
      ["report", "--by", "user"],
      ["report", "--by", "team", "--db", db],
      ["report", "--db", db],
      ["report", "--by", "user", "--since", "yesterday", "--db", db],
      ["report", "--by", "user", "--format", "xml", "--db", db],
      ["report", "--by", "user", "--colour", "--db", db],
      ["refund", "--db", db],
      [],
      ["budgets", "--db", join(tmpdir(), "no-such-ledger.db")],
    ];
    const results: Result[] = [];
    // Three processes at a time: the machine has two cores.
    for (let i = 0; i < cases.length; i += 3) {
      results.push(...(await Promise.all(cases.slice(i, i + 3).map((c) => agentRuntimeCost(c)))));
    }
    const [noDb, badBy, noBy, badSince, badFormat, badFlag, badCommand, nothing, missing] =
      results as Result[] & Record<0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8, Result>;
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toContain("Give the ledger with --db PATH or AGENT_RUNTIME_COST_DB.");
    expect(badBy.code).toBe(2);
    expect(badBy.stderr).toContain('--by "team" is not one of user, session, day, month, gpu, provider.');
    expect(noBy.stderr).toContain("--by is required");
    expect(badSince.stderr).toContain('--since "yesterday" is not a time');
    expect([badFormat.code, badFlag.code, badCommand.code, nothing.code]).toEqual([2, 2, 2, 2]);
    expect(badFlag.stderr).toContain("--colour");
    expect(badCommand.stderr).toContain('Unknown command "refund"');
    expect(nothing.stderr).toContain("Usage:");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("NOT_FOUND: No ledger at");
    expect(missing.stdout).toBe("");
  });
});
