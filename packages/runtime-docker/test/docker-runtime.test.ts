import { isRuntimeError, RuntimeStatus } from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { dockerRuntime, LABELS, MANAGED_BY, parseDockerRuntimeOptions } from "../src/index.js";
import { cleanupSessions, containersOf, engine, found, skipNote, testOptions } from "./helpers.js";

const PREFIX = `dr-${process.pid}-`;
let n = 0;
const session = () => `${PREFIX}${n++}`;

async function failure(
  p: Promise<unknown> | (() => unknown),
): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected a failure");
}

describe("options (no engine needed)", () => {
  it("names renamed options with their replacement, and refuses unknown keys", async () => {
    const renamed = await failure(() => parseDockerRuntimeOptions({ dockerHost: "unix:///x" } as never));
    expect(renamed.code).toBe("INVALID_ARGUMENT");
    expect(renamed.message).toContain('dockerHost: this option is now "engine"');
    const unknown = await failure(() => parseDockerRuntimeOptions({ gpus: 1 } as never));
    expect(unknown.message).toMatch(/gpus/);
  });

  it('network "none" with connect "port" is refused, saying to use the socket', async () => {
    const err = await failure(() => parseDockerRuntimeOptions({ network: "none", connect: "port" }));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toMatch(/connect "socket"/);
  });

  it("a malformed engine address is INVALID_ARGUMENT naming the forms", async () => {
    const err = await failure(() => dockerRuntime({ engine: "docker.example:2375" }));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toMatch(/engine: .*unix:\/\/\//);
  });

  it("an invalid image spec names the path under image.", async () => {
    const err = await failure(() =>
      dockerRuntime({
        engine: "unix:///nonexistent.sock",
        image: { version: 1, base: { kind: "registry" } },
      }),
    );
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toMatch(/image\.base/);
  });

  it("an engine nobody listens on fails connect() with UNAVAILABLE naming the address, leaving nothing", async () => {
    const provider = dockerRuntime({
      engine: "unix:///tmp/agent-runtime-no-engine.sock",
      image: "some/image:1",
    });
    const runtime = await provider.create({ sessionId: "no-engine" });
    const err = await failure(runtime.connect());
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.message).toContain("unix:///tmp/agent-runtime-no-engine.sock");
    expect(runtime.status).toBe(RuntimeStatus.ERROR);
  });

  it("gpu, timeoutMs and idleTimeoutMs overrides are UNSUPPORTED naming the field and what to do", async () => {
    const provider = dockerRuntime({ engine: "unix:///tmp/agent-runtime-no-engine.sock", image: "x/y:1" });
    for (const overrides of [{ gpu: "T4" }, { timeoutMs: 60_000 }, { idleTimeoutMs: 60_000 }]) {
      const err = await failure(provider.create({ sessionId: "s", ...overrides }));
      expect(err.code).toBe("UNSUPPORTED");
      expect(err.message).toContain(Object.keys(overrides)[0]);
    }
  });
});

describe.skipIf(found.skip !== undefined)(`runtime-docker on a real engine${skipNote}`, () => {
  cleanupSessions(PREFIX);

  it("applies the session's resources, env and labels to its container", async () => {
    const provider = dockerRuntime(testOptions({ maxProcesses: 200, env: { FROM_PROVIDER: "p" } }));
    const sessionId = session();
    const runtime = await provider.create({
      sessionId,
      cpuCores: 0.5,
      memoryMiB: 512,
      env: { FROM_SESSION: "s1" },
      labels: { team: "infra" },
    });
    await runtime.connect();
    try {
      const info = await engine.inspectContainer(runtime.containerId as string);
      expect(info?.HostConfig?.NanoCpus).toBe(500_000_000);
      expect(info?.HostConfig?.Memory).toBe(512 * 1024 * 1024);
      expect(info?.HostConfig?.PidsLimit).toBe(200);
      expect(info?.Config.Labels).toMatchObject({
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.session]: sessionId,
        "agent-runtime.label.team": "infra",
      });
      const obs = await runtime.runCommand("echo $FROM_PROVIDER-$FROM_SESSION");
      expect(obs.content.trim()).toBe("p-s1");
      expect(runtime.handle().data).toMatchObject({ containerId: runtime.containerId });
    } finally {
      await runtime.close();
    }
    expect(await containersOf(sessionId)).toEqual([]);
  }, 120_000);

  it("a server that cannot start fails with the container's output in the error, and leaves no container", async () => {
    // The clean base has no action-server: as a "preinstalled" image its command is not found.
    const provider = dockerRuntime(testOptions({ image: found.baseImage, startupTimeoutMs: 20_000 }));
    const sessionId = session();
    const runtime = await provider.create({ sessionId });
    const err = await failure(runtime.connect());
    expect(isRuntimeError(err)).toBe(true);
    expect(err.message).toMatch(/agent-runtime-action-server/);
    expect(err.message).toMatch(/No such file or directory/);
    expect(await containersOf(sessionId)).toEqual([]);
  }, 60_000);

  it("a preinstalled image the engine does not have is NOT_FOUND saying to pull it", async () => {
    const provider = dockerRuntime(testOptions({ image: "localhost/agent-runtime-test/absent:1" }));
    const sessionId = session();
    const err = await failure((await provider.create({ sessionId })).connect());
    expect(err.code).toBe("NOT_FOUND");
    expect(err.message).toMatch(/docker pull localhost\/agent-runtime-test\/absent:1/);
    expect(await containersOf(sessionId)).toEqual([]);
  });

  it("a start aborted mid-way leaves no container behind", async () => {
    const provider = dockerRuntime(testOptions());
    for (const delayMs of [0, 150, 400]) {
      const sessionId = session();
      const runtime = await provider.create({ sessionId });
      const abort = new AbortController();
      setTimeout(() => abort.abort(), delayMs);
      const result = await runtime.connect({ signal: abort.signal }).then(
        () => "connected",
        (err: { code?: string }) => err.code,
      );
      if (result === "connected") await runtime.close();
      else expect(result).toBe("CANCELLED");
      expect(await containersOf(sessionId), `aborted after ${delayMs} ms`).toEqual([]);
    }
  }, 120_000);

  it("a container that dies is reported: DISCONNECTED naming the exit, and close removes it", async () => {
    const provider = dockerRuntime(testOptions());
    const sessionId = session();
    const runtime = await provider.create({ sessionId });
    await runtime.connect();
    await engine.killContainer(runtime.containerId as string);
    await expect
      .poll(() => runtime.status, { timeout: 10_000 })
      .toBe(RuntimeStatus.ERROR_RUNTIME_DISCONNECTED);
    const err = await failure(runtime.runCommand("echo hi"));
    expect(err.code).toMatch(/DISCONNECTED|FAILED_PRECONDITION/);
    await runtime.close();
    expect(await containersOf(sessionId)).toEqual([]);
  }, 60_000);

  it("keepAlive: a new provider (a restarted host) re-attaches by handle; a stopped container is NOT_FOUND and removed", async () => {
    const first = dockerRuntime(testOptions({ keepAlive: true }));
    const sessionId = session();
    const runtime = await first.create({ sessionId });
    await runtime.connect();
    await runtime.runCommand("export KEPT=yes");
    const handle = JSON.parse(JSON.stringify(runtime.handle()));
    await runtime.close();
    await first.close();
    expect(await containersOf(sessionId)).toHaveLength(1);

    const second = dockerRuntime(testOptions());
    const again = await second.attach(handle);
    await again.connect();
    expect((await again.runCommand("echo $KEPT")).content.trim()).toBe("yes");
    await again.close();
    expect(await containersOf(sessionId)).toEqual([]);

    // A handle whose container was stopped behind our back.
    const third = dockerRuntime(testOptions({ keepAlive: true }));
    const r3 = await third.create({ sessionId: session() });
    await r3.connect();
    const h3 = JSON.parse(JSON.stringify(r3.handle()));
    await r3.close();
    await engine.killContainer(h3.data.containerId);
    const stale = await dockerRuntime(testOptions()).attach(h3);
    const err = await failure(stale.connect());
    expect(err.code).toBe("NOT_FOUND");
    expect(await engine.inspectContainer(h3.data.containerId)).toBeUndefined();
  }, 120_000);

  it("a warm pool hands out a started container at once; close removes only what was never handed out", async () => {
    const provider = dockerRuntime(testOptions({ pool: { size: 1 } }));
    try {
      await expect.poll(() => provider.poolReady, { timeout: 60_000, interval: 100 }).toBe(1);
      const pooledIds = (await provider.inventory.list({ [LABELS.pool]: provider.poolId })).map(
        (c) => c.sandboxId,
      );
      expect(pooledIds).toHaveLength(1);
      const sessionId = session();
      const runtime = await provider.create({ sessionId });
      expect(runtime.status).toBe(RuntimeStatus.READY);
      expect(runtime.containerId).toBe(pooledIds[0]);
      expect((await runtime.runCommand("echo pooled")).content.trim()).toBe("pooled");
      // A create that changes the shape bypasses the pool.
      const other = await provider.create({ sessionId: session(), memoryMiB: 300 });
      expect(other.status).not.toBe(RuntimeStatus.READY);
      await provider.close();
      const left = await provider.inventory.list({ [LABELS.pool]: provider.poolId });
      expect(left.map((c) => c.sandboxId)).toEqual([runtime.containerId]);
      await runtime.close();
      expect(await provider.inventory.list({ [LABELS.pool]: provider.poolId })).toEqual([]);
    } finally {
      await provider.close();
      for (const c of await provider.inventory.list({ [LABELS.pool]: provider.poolId })) {
        await provider.inventory.terminate(c.sandboxId);
      }
    }
  }, 180_000);
});

afterAll(() => undefined);
