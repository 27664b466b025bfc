import { costGuard } from "@agent-runtime/cost-guard";
import { type CostHooks, LEASE_TAG_KEY } from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { dockerRuntime } from "../src/index.js";
import { cleanupSessions, containersOf, engine, found, skipNote, testOptions } from "./helpers.js";

const PREFIX = `lease-${process.pid}-`;

describe.skipIf(found.skip !== undefined)(`runtime-docker with cost-guard${skipNote}`, () => {
  cleanupSessions(PREFIX);
  const guard = costGuard({ enforceIntervalMs: 0, sweepGraceMs: 0 });
  afterAll(() => guard.close());
  const leases: string[] = [];
  const cost: CostHooks = {
    reserve: async (request) => {
      const lease = await guard.reserve(request);
      leases.push(lease.leaseId);
      return lease;
    },
    activate: (leaseId, sandboxId) => guard.activate(leaseId, sandboxId),
    heartbeat: (leaseId) => guard.heartbeat(leaseId),
    settle: (leaseId, usage) => guard.settle(leaseId, usage),
    rescope: (leaseId, scope) => guard.rescope(leaseId, scope),
  } as CostHooks;

  it("labels the container with its lease, settles it on close, and the sweep reconciles both ways", async () => {
    const provider = dockerRuntime(testOptions({ keepAlive: true }), { cost });
    // 1. A container whose runtime went away without settling (a crashed host): removed behind its back, the
    //    sweep settles the lease.
    const a = await provider.create({ sessionId: `${PREFIX}a` });
    await a.connect();
    const leaseA = leases.at(-1) as string;
    const infoA = await engine.inspectContainer(a.containerId as string);
    expect(infoA?.Config.Labels?.[LEASE_TAG_KEY]).toBe(leaseA);
    expect(guard.getLease(leaseA)?.status).toBe("active");
    await a.close(); // keepAlive: the container runs on, the lease stays open
    await engine.removeContainer(a.containerId as string);
    // 2. A container whose lease was settled while it kept running: the sweep removes it.
    const b = await provider.create({ sessionId: `${PREFIX}b` });
    await b.connect();
    const leaseB = leases.at(-1) as string;
    await b.close();
    await guard.settle(leaseB, {});
    expect(await containersOf(`${PREFIX}b`)).toHaveLength(1);

    const report = await guard.sweepOrphans(provider.inventory);
    expect(report.settled.map((s) => s.leaseId)).toContain(leaseA);
    expect(guard.getLease(leaseA)?.status).toBe("settled");
    expect(await containersOf(`${PREFIX}b`)).toEqual([]);
    await provider.close();
  }, 120_000);

  it("a normal close settles the lease and removes the container", async () => {
    const provider = dockerRuntime(testOptions(), { cost });
    const r = await provider.create({ sessionId: `${PREFIX}c` });
    await r.connect();
    const lease = leases.at(-1) as string;
    await r.runCommand("echo hi");
    await r.close();
    expect(guard.getLease(lease)?.status).toBe("settled");
    expect(await containersOf(`${PREFIX}c`)).toEqual([]);
  }, 60_000);
});
