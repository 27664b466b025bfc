import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { costGuard } from "@agent-runtime/cost-guard";
import {
  LEASE_TAG_KEY,
  noopRedactor,
  type RuntimeHandle,
  RuntimeStatus,
  type SecretReference,
  type StatusEvent,
} from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModalRuntimeOptions, modalRuntime, TAGS } from "../src/index.js";
import { codeOf, errorOf, eventually, runNode, useEmulator } from "./helpers.js";

const h = useEmulator({ strict: true, secrets: { "team-secret": { TEAM_TOKEN: "team-token-value-123" } } });
const { provider, connected, guarded } = h;
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "rm-test-"));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const runningIn = (appName: string) =>
  h.emulator.listSandboxes().filter((s) => s.appName === appName && s.running);

describe("options and credentials", () => {
  it("reports every bad option at once, with the known GPU types and renamed options", () => {
    let message = "";
    try {
      modalRuntime({ gpu: "Z100:2", memoryMiB: 1, tags: { "agent-runtime.x": "y" } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(
      'gpu: Unknown GPU type "Z100" for Modal. Known types: A10, A100, A100-80GB, B200',
    );
    expect(message).toContain("memoryMiB: ");
    expect(message).toContain('tags.agent-runtime.x: the "agent-runtime." prefix is reserved');
    // Cross-field checks run once every field is valid.
    expect(() =>
      modalRuntime({ idleTimeoutMs: 7_200_000, timeoutMs: 3_600_000, cpuCores: 2, cpuLimitCores: 1 }),
    ).toThrow(
      /idleTimeoutMs: must not exceed timeoutMs \(3600000\)\n\s+cpuLimitCores: must be at least cpuCores \(2\)/,
    );
    expect(() => modalRuntime({ memory: 512 } as ModalRuntimeOptions)).toThrow(
      'memory: this option is now "memoryMiB"',
    );
    expect(() => modalRuntime({ gpu: "H100:9" })).toThrow("at most 8 fit one container");
  });

  it("validates an ImageSpec with image-builder's schema, paths prefixed with image.", () => {
    expect(() =>
      modalRuntime({
        credentials: { tokenId: "ak-12345678abc", tokenSecret: "as-12345678abc" },
        image: { base: { kind: "registry", image: "" }, steps: [] },
      }),
    ).toThrow(/image\.base/);
  });

  it("missing or malformed credentials fail at creation with UNAUTHORIZED and what to do", () => {
    let err: unknown;
    try {
      modalRuntime({});
    } catch (e) {
      err = e;
    }
    expect((err as { code: string }).code).toBe("UNAUTHORIZED");
    expect((err as Error).message).toMatch(/No Modal credentials found.*modal token new/);
    try {
      modalRuntime({ credentials: { tokenId: "as-swapped123456", tokenSecret: "ak-swapped123456" } });
    } catch (e) {
      err = e;
    }
    expect((err as { code: string }).code).toBe("UNAUTHORIZED");
    expect((err as Error).message).toContain("the two look swapped");
    expect((err as Error).message).not.toContain("swapped123456");
  });

  it("never shows credentials or the session-key secret when serialized", () => {
    const p = provider({ sessionKeySecret: "k".repeat(40) });
    const text = JSON.stringify(p.options) + inspect(p.options) + JSON.stringify(p) + inspect(p);
    expect(text).not.toContain(h.emulator.tokenSecret);
    expect(text).not.toContain("k".repeat(40));
    expect(JSON.stringify(p.options)).toContain('"credentials":"[redacted]"');
  });
});

describe("connect", () => {
  it("reserves a lease first and puts its id, the session and a key nonce in the tags at create", async () => {
    const { cost, leases, guard } = guarded();
    const p = provider({}, { cost });
    const events: StatusEvent[] = [];
    const runtime = await p.create({ sessionId: "tags-1" });
    h.track(runtime);
    runtime.onStatus((e) => events.push(e));
    await runtime.connect();
    const [summary] = runningIn(p.options.appName);
    expect(summary?.tags[LEASE_TAG_KEY]).toBe(leases[0]);
    expect(summary?.tags[TAGS.session]).toBe("tags-1");
    expect(summary?.tags[TAGS.keyNonce]).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(summary?.name).toBe("ar-tags-1");
    expect(JSON.stringify(summary)).not.toContain(runtime.handle().sessionApiKey);
    expect(guard.getLease(leases[0]!)?.sandboxId).toBe(runtime.sandboxId);
    expect(events.map((e) => e.status)).toEqual([
      RuntimeStatus.STARTING_RUNTIME,
      RuntimeStatus.BUILDING_RUNTIME,
      RuntimeStatus.STARTING_RUNTIME,
      RuntimeStatus.RUNTIME_STARTED,
      RuntimeStatus.READY,
    ]);
    const handle = runtime.handle();
    expect(handle.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(handle.data).toMatchObject({
      sandboxId: runtime.sandboxId,
      appName: p.options.appName,
      sandboxName: "ar-tags-1",
      leaseId: leases[0],
    });
    await runtime.close();
    expect(guard.getLease(leases[0]!)?.status).toBe("settled");
    expect(runningIn(p.options.appName)).toEqual([]);
  });

  it("refuses over budget with BUDGET_EXCEEDED before anything is created", async () => {
    const { cost } = guarded(0.01);
    const p = provider({}, { cost });
    const runtime = await p.create({ sessionId: "budget-1" });
    h.track(runtime);
    expect(await codeOf(runtime.connect())).toBe("BUDGET_EXCEEDED");
    expect(runtime.status).toBe(RuntimeStatus.BUDGET_EXCEEDED);
    expect(h.emulator.listSandboxes().filter((s) => s.appName === p.options.appName)).toEqual([]);
  });

  it("a failed create leaves nothing running and settles the lease", async () => {
    const { cost, leases, guard } = guarded();
    const p = provider({}, { cost });
    h.emulator.faults.failCreates(1, "INVALID_ARGUMENT", "bad definition");
    const runtime = await p.create({ sessionId: "fail-create" });
    h.track(runtime);
    const err = await errorOf(runtime.connect());
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toContain("Creating the Modal sandbox failed: INVALID_ARGUMENT: bad definition");
    expect(guard.getLease(leases[0]!)?.status).toBe("settled");
    expect(runningIn(p.options.appName)).toEqual([]);
  });

  it("a server that dies before it is ready fails connect at once, terminated, lease settled", async () => {
    const { cost, leases, guard } = guarded();
    const p = provider({ serverCommand: [process.execPath, "-e", "process.exit(3)"] }, { cost });
    const runtime = await p.create({ sessionId: "dies" });
    h.track(runtime);
    const t0 = Date.now();
    expect(await codeOf(runtime.connect())).toBe("DISCONNECTED");
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(guard.getLease(leases[0]!)?.status).toBe("settled");
    expect(runningIn(p.options.appName)).toEqual([]);
  });

  it("a server that never answers times out at startupTimeoutMs and is terminated", async () => {
    const { cost, leases, guard } = guarded();
    const p = provider(
      { serverCommand: [process.execPath, "-e", "setTimeout(() => {}, 600000)"], startupTimeoutMs: 2000 },
      { cost },
    );
    const runtime = await p.create({ sessionId: "silent" });
    h.track(runtime);
    expect(await codeOf(runtime.connect())).toBe("TIMEOUT");
    expect(guard.getLease(leases[0]!)?.status).toBe("settled");
    expect(runningIn(p.options.appName)).toEqual([]);
  });

  it("a create slower than the deadline gives TIMEOUT and the late sandbox is terminated", async () => {
    const p = provider({ startupTimeoutMs: 1000 });
    h.emulator.faults.delayCreates(2500);
    const runtime = await p.create({ sessionId: "slow-create" });
    h.track(runtime);
    expect(await codeOf(runtime.connect())).toBe("TIMEOUT");
    await eventually(() => h.emulator.listSandboxes().some((s) => s.appName === p.options.appName), 10_000);
    await eventually(() => runningIn(p.options.appName).length === 0, 10_000);
  });

  it("a missing named Modal secret fails with NOT_FOUND and leaves nothing; a present one is injected", async () => {
    // A reference for another backend is ignored; the Modal one is attached as a Modal named secret.
    const refs: SecretReference[] = [
      { backend: "vault", name: "ignored-elsewhere" },
      { backend: "modal", name: "team-secret", requiredKeys: ["TEAM_TOKEN"] },
    ];
    const secrets = (references: SecretReference[]) => ({
      resolve: async () => ({
        env: { PLAIN_SECRET: "plain-secret-value-1" },
        names: ["PLAIN_SECRET"],
        redactor: noopRedactor,
        references,
      }),
    });
    const ok = await connected(provider({}, { secrets: secrets(refs) }), "named-secret");
    expect((await ok.runCommand('echo "$TEAM_TOKEN $PLAIN_SECRET"')).content.trim()).toBe(
      "team-token-value-123 plain-secret-value-1",
    );
    const p = provider({}, { secrets: secrets([{ backend: "modal", name: "nope" }]) });
    const runtime = await p.create({ sessionId: "missing-secret" });
    h.track(runtime);
    const err = await errorOf(runtime.connect());
    expect(err.code).toBe("NOT_FOUND");
    expect(err.message).toContain('Looking up the Modal Secret "nope" failed');
    expect(h.emulator.listSandboxes().filter((s) => s.appName === p.options.appName)).toEqual([]);
  });

  it("a second sandbox for the same session is refused with ALREADY_EXISTS", async () => {
    const p = provider();
    await connected(p, "twice");
    const second = await p.create({ sessionId: "twice" });
    h.track(second);
    const err = await errorOf(second.connect());
    expect(err.code).toBe("ALREADY_EXISTS");
    expect(err.message).toContain("attachSession");
    expect(runningIn(p.options.appName)).toHaveLength(1);
  });
});

describe("faults", () => {
  it("UNAVAILABLE once on create: the SDK's retry succeeds, one sandbox", async () => {
    const p = provider();
    h.emulator.faults.failNext("SandboxCreate", "UNAVAILABLE", 1);
    const runtime = await connected(p, "unavailable-once");
    expect((await runtime.runCommand("echo ok")).content.trim()).toBe("ok");
    expect(runningIn(p.options.appName)).toHaveLength(1);
  });

  it("an outage longer than the SDK's retries: our backoff tier succeeds, still one sandbox", async () => {
    const p = provider({ retry: { maxAttempts: 4, initialDelayMs: 50, maxDelayMs: 200 } });
    h.emulator.faults.failNext("SandboxCreate", "UNAVAILABLE", 6);
    const runtime = await connected(p, "unavailable-long");
    expect((await runtime.runCommand("echo ok")).content.trim()).toBe("ok");
    expect(runningIn(p.options.appName)).toHaveLength(1);
  });

  it("eviction: DISCONNECTED, status event and the lease settled without close()", async () => {
    const { cost, leases, guard } = guarded();
    const runtime = await connected(provider({}, { cost }), "evicted");
    const events: StatusEvent[] = [];
    runtime.onStatus((e) => events.push(e));
    expect(h.emulator.faults.evict(runtime.sandboxId!, "MEMORY_MANAGER_EVICTION")).toBe(true);
    await eventually(() => guard.getLease(leases[0]!)?.status === "settled", 5000);
    expect(events.map((e) => e.status)).toContain(RuntimeStatus.ERROR_RUNTIME_DISCONNECTED);
    expect(await codeOf(runtime.runCommand("echo hi"))).toBe("DISCONNECTED");
    await runtime.close();
    expect(runtime.status).toBe(RuntimeStatus.STOPPED);
  });

  it("the idle timeout ends a sandbox its host left behind; the sweeper then settles its lease", async () => {
    const { cost, leases, guard } = guarded();
    const p = provider({ idleTimeoutMs: 2000, keepAlive: true }, { cost });
    const runtime = await connected(p, "idle");
    expect((await runtime.runCommand("echo busy")).content.trim()).toBe("busy");
    const handle = runtime.handle();
    // As after a host crash: no client holds a tunnel connection any more, so Modal's idle clock runs.
    await runtime.close();
    await eventually(
      () =>
        h.emulator.listSandboxes().find((s) => s.sandboxId === handle.data.sandboxId)?.result?.status ===
        "IDLE_TIMEOUT",
      15_000,
    );
    expect(await codeOf((await p.attach(handle)).connect())).toBe("NOT_FOUND");
    expect(guard.getLease(leases[0]!)?.status).toBe("active");
    const report = await guard.sweepOrphans(p.inventory);
    expect(report.settled.map((s) => s.leaseId)).toEqual([leases[0]]);
  }, 30_000);
});

describe("attach", () => {
  it("re-attaches after the host process exits (by handle and by session id), then NOT_FOUND once closed", async () => {
    const ledgerPath = join(tmp, "ledger.db");
    const keySecret = "s".repeat(48);
    const appName = `rm-restart-${process.pid}`;
    const script = join(import.meta.dirname, "fixtures", "keep-alive-host.ts");
    const env = {
      ...process.env,
      SHLVL: "1",
      AR_TEST_SERVER_URL: h.emulator.serverUrl,
      AR_TEST_TOKEN_ID: h.emulator.tokenId,
      AR_TEST_TOKEN_SECRET: h.emulator.tokenSecret,
      AR_TEST_CA_PATH: h.emulator.caCertPath,
      AR_TEST_APP: appName,
      AR_TEST_SESSION: "restart-1",
      AR_TEST_LEDGER: ledgerPath,
      AR_TEST_KEY_SECRET: keySecret,
    };
    const out = await runNode(["--import", "tsx", script], { env, timeoutMs: 60_000 });
    expect(out.status, out.stderr).toBe(0);
    const handle = JSON.parse(out.stdout.trim().split("\n").pop()!) as RuntimeHandle;
    expect(runningIn(appName)).toHaveLength(1);

    const guard = costGuard({ ledgerPath, enforceIntervalMs: 0 });
    h.track({ close: async () => guard.close() });
    const leaseId = String(handle.data.leaseId);
    expect(guard.getLease(leaseId)?.status).toBe("active");
    const p = provider({ appName, sessionKeySecret: keySecret }, { cost: guard });
    const byHandle = await p.attach(handle);
    await byHandle.connect();
    expect((await byHandle.runCommand("echo $FROM_FIRST_HOST $(pwd)")).content.trim()).toBe("yes /tmp");

    const bySession = await p.attachSession("restart-1");
    await bySession.connect();
    expect(bySession.handle().sessionApiKey).toBe(handle.sessionApiKey);
    expect((await bySession.runCommand("echo $FROM_FIRST_HOST")).content.trim()).toBe("yes");
    await bySession.close();
    await byHandle.close();
    expect(runningIn(appName)).toEqual([]);
    expect(guard.getLease(leaseId)?.status).toBe("settled");

    const again = await p.attach(handle);
    const err = await errorOf(again.connect());
    expect(err.code).toBe("NOT_FOUND");
    expect(err.message).toContain("is not running any more");
    expect(await codeOf(p.attachSession("restart-1"))).toBe("NOT_FOUND");
    const forged = await p.attach({
      ...handle,
      data: { ...handle.data, sandboxId: "sb-doesnotexist000000000000" },
    });
    expect(await codeOf(forged.connect())).toBe("NOT_FOUND");
  }, 60_000);

  it("attachSession without sessionKeySecret says which option to set", async () => {
    expect(await codeOf(provider().attachSession("x"))).toBe("FAILED_PRECONDITION");
  });
});

describe("warm pool and sweeping", () => {
  it("hands out a ready sandbox at once, re-tags it, and terminates pooled ones on close", async () => {
    const { cost } = guarded();
    const p = provider({ pool: { size: 1 } }, { cost });
    await eventually(() => p.poolReady === 1, 15_000);
    const pooled = runningIn(p.options.appName).map((s) => s.sandboxId);
    expect(pooled).toHaveLength(1);
    const runtime = await p.create({ sessionId: "from-pool" });
    h.track(runtime);
    await runtime.connect();
    // The pooled sandbox itself, already started (its speed is bench/'s business).
    expect(runtime.sandboxId).toBe(pooled[0]);
    expect(runtime.status).toBe(RuntimeStatus.READY);
    expect(runtime.sessionId).toBe("from-pool");
    await runtime.pendingRetag;
    const mine = h.emulator.listSandboxes().find((s) => s.sandboxId === runtime.sandboxId);
    expect(mine?.tags[TAGS.session]).toBe("from-pool");
    expect(mine?.tags[TAGS.pool]).toBeUndefined();
    await eventually(() => p.poolReady === 1, 15_000);
    await p.close();
    const running = runningIn(p.options.appName);
    expect(running.map((s) => s.sandboxId)).toEqual([runtime.sandboxId]);
    expect((await runtime.runCommand("echo still")).content.trim()).toBe("still");
    expect(await codeOf(p.create({ sessionId: "late" }))).toBe("FAILED_PRECONDITION");
  }, 45_000);

  it("the inventory lets cost-guard's sweeper stop a sandbox whose lease was settled elsewhere", async () => {
    const { cost, guard, leases } = guarded();
    const p = provider({ keepAlive: true }, { cost });
    const runtime = await connected(p, "orphan");
    const listed = await p.inventory.listByTag(LEASE_TAG_KEY);
    expect(listed.map((s) => s.sandboxId)).toEqual([runtime.sandboxId]);
    expect(listed[0]?.createdAtMs).toBeGreaterThan(Date.now() - 60_000);
    await guard.settle(leases[0]!, { reason: "host lost track" });
    const report = await guard.sweepOrphans(p.inventory);
    expect(report.terminated.map((t) => t.sandboxId)).toEqual([runtime.sandboxId]);
    expect(runningIn(p.options.appName)).toEqual([]);
  });
});
