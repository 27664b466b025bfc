import { join } from "node:path";
import { actionServerBinPath } from "@agent-runtime/action-server";
import { RuntimeStatus } from "@agent-runtime/runtime-core";
import { SandboxTimeoutError, type Tunnel } from "modal";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_GPU_STARTUP_TIMEOUT_MS,
  DEFAULT_STARTUP_TIMEOUT_MS,
  Deadline,
  maxThrottleWaitSecs,
  startupTimeouts,
  TUNNEL_POLL_MS,
} from "../src/deadline.js";
import type { ModalRuntime, ModalRuntimeOptions, ModalRuntimeProvider } from "../src/index.js";
import { waitForTunnels } from "../src/startup.js";
import { CallCounter } from "./call-counter.js";
import { errorOf, eventually, useEmulator } from "./helpers.js";

// A start that fits Modal, through the real modal@0.11.1 SDK against the strict modal-emulator: deadlines,
// throttling, capacity errors, tunnels before the server listens, and one liveness poll per provider.

const h = useEmulator();

function provider(extra: ModalRuntimeOptions = {}, calls?: CallCounter): ModalRuntimeProvider {
  return h.provider(
    { ...(calls ? { sdkLogLevel: "debug" } : {}), ...extra },
    calls ? { logger: calls.logger } : {},
  );
}

async function runtimeOf(p: ModalRuntimeProvider, sessionId: string): Promise<ModalRuntime> {
  return h.track(await p.create({ sessionId }));
}

const running = (appName: string) =>
  h.emulator.listSandboxes().filter((s) => s.appName === appName && s.running);

describe("deadlines", () => {
  it("default to 120 s, and 20 minutes for create and tunnels with a GPU; a set startupTimeoutMs applies to both", () => {
    expect(startupTimeouts({})).toEqual({ provisionMs: 120_000, readinessMs: 120_000 });
    expect(startupTimeouts({ gpu: "A100:2" })).toEqual({ provisionMs: 1_200_000, readinessMs: 120_000 });
    expect(startupTimeouts({ gpu: "T4", startupTimeoutMs: 300_000 })).toEqual({
      provisionMs: 300_000,
      readinessMs: 300_000,
    });
    expect([DEFAULT_STARTUP_TIMEOUT_MS, DEFAULT_GPU_STARTUP_TIMEOUT_MS]).toEqual([120_000, 1_200_000]);
  });

  it("bound the SDK's maxThrottleWaitSecs (unset, it obeys slow-down requests forever)", () => {
    expect(maxThrottleWaitSecs({})).toBe(60);
    expect(maxThrottleWaitSecs({ startupTimeoutMs: 10_000 })).toBe(5);
    expect(maxThrottleWaitSecs({ startupTimeoutMs: 1000 })).toBe(1);
    expect(maxThrottleWaitSecs({ startupTimeoutMs: 3_600_000 })).toBe(60);
    // The provider's client carries it (the SDK's own profile field).
    expect(provider().client.profile.maxThrottleWaitSecs).toBe(60);
    expect(provider({ startupTimeoutMs: 8000 }).client.profile.maxThrottleWaitSecs).toBe(4);
  });

  it("a GPU sandbox (Modal's V1 API) starts with the GPU default deadline", async () => {
    const p = provider({ gpu: "t4" });
    expect(p.options.startupTimeoutMs).toBeUndefined();
    const runtime = await runtimeOf(p, "gpu-start");
    await runtime.connect();
    const sb = h.emulator.listSandboxes().find((s) => s.sandboxId === runtime.sandboxId);
    expect(sb?.gpu).toBe("T4");
    expect(sb?.sandboxId).not.toMatch(/-v2$/);
  });
});

describe("tunnels", () => {
  /** A sandbox whose tunnels are not there for the first `misses` requests (Modal answers those with TIMEOUT). */
  function slowTunnels(misses: number) {
    const asked: number[] = [];
    return {
      asked,
      sb: {
        sandboxId: "sb-test",
        tunnels: async (timeoutMs?: number) => {
          asked.push(timeoutMs ?? -1);
          if (asked.length <= misses) throw new SandboxTimeoutError();
          return { 60000: { host: "127.0.0.1", port: 443, url: "https://127.0.0.1" } as Tunnel };
        },
      },
    };
  }
  const retry = { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 20 };

  it("are asked for in pieces of at most 50 s, again after each piece that timed out, until the deadline", async () => {
    const { sb, asked } = slowTunnels(3);
    const tunnels = await waitForTunnels(sb, new Deadline(1_200_000, "startupTimeoutMs"), retry);
    expect(tunnels[60000]?.url).toBe("https://127.0.0.1");
    expect(asked).toHaveLength(4);
    for (const ms of asked) expect(ms).toBeLessThanOrEqual(TUNNEL_POLL_MS);
    expect(TUNNEL_POLL_MS).toBe(50_000);
  });

  it("past the deadline: TIMEOUT naming the step and the option", async () => {
    const { sb, asked } = slowTunnels(1_000_000);
    const err = await errorOf(waitForTunnels(sb, new Deadline(1500, "startupTimeoutMs"), retry));
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toBe(
      "Modal did not open the tunnels of sandbox sb-test within startupTimeoutMs (1500 ms); raise startupTimeoutMs or retry.",
    );
    expect(asked.length).toBeGreaterThan(1);
    for (const ms of asked) expect(ms).toBeGreaterThanOrEqual(1000);
  });

  it("that reset connections until the server listens (strict h.emulator): readiness waits for the server", async () => {
    const p = provider({
      serverCommand: [
        process.execPath,
        join(import.meta.dirname, "fixtures", "delayed-server.cjs"),
        actionServerBinPath(),
      ],
      env: { DELAY_MS: "2500" },
    });
    const runtime = await runtimeOf(p, "late-listener");
    const t0 = Date.now();
    await runtime.connect();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2400);
    expect(runtime.status).toBe(RuntimeStatus.READY);
    expect((await runtime.runCommand("echo up")).content.trim()).toBe("up");
  });
});

describe("throttling and capacity", () => {
  it("Modal's slow-down requests on create are obeyed by the SDK within the bound, and the start succeeds", async () => {
    const calls = new CallCounter();
    const p = provider({}, calls);
    h.emulator.faults.throttle("SandboxCreate", 2, 1);
    const runtime = await runtimeOf(p, "throttled-create");
    const t0 = Date.now();
    await runtime.connect();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    // One SDK call; its retry middleware re-sent it twice after the waits Modal asked for.
    expect(calls.count("SandboxCreate")).toBe(1);
  });

  it("a slow-down longer than maxThrottleWaitSecs surfaces, is retried with backoff, and the start ends at its deadline", async () => {
    const p = provider({
      startupTimeoutMs: 4000,
      retry: { maxAttempts: 2, initialDelayMs: 100, maxDelayMs: 400 },
    });
    // Modal asks for 5 minutes: past the SDK's bound (2 s for this deadline), so it does not wait them out.
    h.emulator.faults.throttle("SandboxCreate", 1000, 300);
    const runtime = await runtimeOf(p, "throttled-forever");
    const t0 = Date.now();
    const err = await errorOf(runtime.connect());
    const took = Date.now() - t0;
    expect(err.code).toBe("RATE_LIMITED");
    expect(err.message).toMatch(/^Creating the Modal sandbox failed: RESOURCE_EXHAUSTED: injected throttle/);
    expect(took).toBeGreaterThan(3000);
    expect(took).toBeLessThan(8000);
    expect(running(p.options.appName)).toEqual([]);
  });

  it("RESOURCE_EXHAUSTED on create (no capacity) is retried with backoff past retry.maxAttempts, until it works", async () => {
    const calls = new CallCounter();
    const p = provider({ retry: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 300 } }, calls);
    h.emulator.faults.failCreates(6, "RESOURCE_EXHAUSTED");
    const runtime = await runtimeOf(p, "no-capacity-then-some");
    await runtime.connect();
    const retries = calls.warnings.filter((w) => w.message === "creating the Modal sandbox failed; retrying");
    // A call another test left in flight may take one of the failures; every other one is retried here.
    expect(retries.length).toBeGreaterThanOrEqual(5);
    expect(retries.every((w) => w.fields?.code === "RATE_LIMITED")).toBe(true);
    expect(calls.count("SandboxCreate")).toBe(retries.length + 1);
    expect(running(p.options.appName)).toHaveLength(1);
  });

  it("... and gives up at the deadline with RATE_LIMITED, leaving nothing running", async () => {
    const p = provider({
      startupTimeoutMs: 3000,
      retry: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 300 },
    });
    h.emulator.faults.failCreates(10_000, "RESOURCE_EXHAUSTED");
    const runtime = await runtimeOf(p, "no-capacity");
    const t0 = Date.now();
    const err = await errorOf(runtime.connect());
    expect(err.code).toBe("RATE_LIMITED");
    expect(err.message).toMatch(
      /^Creating the Modal sandbox failed: RESOURCE_EXHAUSTED: injected fault: no capacity for this sandbox, try again later\. Modal asked to slow down; /,
    );
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(running(p.options.appName)).toEqual([]);
  });

  it("the App lookup is inside the deadline too: a slow-down past the bound ends the start in time", async () => {
    const p = provider({ startupTimeoutMs: 3000 });
    h.emulator.faults.throttle("AppGetOrCreate", 10_000, 300);
    const runtime = await runtimeOf(p, "throttled-app");
    const t0 = Date.now();
    const err = await errorOf(runtime.connect());
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(["RATE_LIMITED", "TIMEOUT"]).toContain(err.code);
    expect(err.message).toMatch(/App "rm-test-\S+"/);
  });
});

describe("liveness", () => {
  it("N connected sandboxes cost one listing per interval, not N polls; a sandbox that ends is still noticed", async () => {
    const calls = new CallCounter();
    const intervalMs = 300;
    const p = provider({ livenessIntervalMs: intervalMs }, calls);
    const runtimes = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => runtimeOf(p, `live-${i}`)));
    await Promise.all(runtimes.map((r) => r.connect()));
    // Past the start's own fast checks (they end at READY, at the latest 2 s later).
    await new Promise((r) => setTimeout(r, 2500));
    calls.reset();
    const windowMs = 3000;
    await new Promise((r) => setTimeout(r, windowMs));
    const polls = calls.count("SandboxWait", "SandboxWaitV2");
    const lists = calls.count("SandboxListV2");
    const ticks = windowMs / intervalMs;
    expect(polls).toBe(0);
    // One listing per interval: one page, plus the empty page that ends it.
    expect(lists).toBeGreaterThanOrEqual(ticks - 3);
    expect(lists).toBeLessThanOrEqual(2 * (ticks + 1));

    const [victim, ...others] = runtimes;
    h.emulator.faults.evict(victim!.sandboxId!, "MEMORY_MANAGER_EVICTION");
    await eventually(() => victim!.status === RuntimeStatus.ERROR_RUNTIME_DISCONNECTED, 5000);
    for (const r of others) expect(r.status).toBe(RuntimeStatus.READY);
    expect((await others[0]!.runCommand("echo still")).content.trim()).toBe("still");
  });
  it("while listing fails, each sandbox is checked alone with backoff, not every interval", async () => {
    const calls = new CallCounter();
    const intervalMs = 200;
    const p = provider({ livenessIntervalMs: intervalMs }, calls);
    const runtimes = await Promise.all([0, 1, 2].map((i) => runtimeOf(p, `unlisted-${i}`)));
    await Promise.all(runtimes.map((r) => r.connect()));
    h.emulator.faults.failNext("SandboxListV2", "PERMISSION_DENIED", 100_000);
    await new Promise((r) => setTimeout(r, 2500));
    calls.reset();
    const windowMs = 4000;
    await new Promise((r) => setTimeout(r, windowMs));
    const polls = calls.count("SandboxWait", "SandboxWaitV2");
    // Every interval would be 3 x 20 = 60 polls; doubling from 200 ms, each sandbox is checked a few times.
    expect(polls).toBeGreaterThan(0);
    expect(polls).toBeLessThanOrEqual(3 * 4);
    h.emulator.faults.evict(runtimes[1]!.sandboxId!, "TERMINATED");
    await eventually(() => runtimes[1]!.status === RuntimeStatus.ERROR_RUNTIME_DISCONNECTED, 15_000);
    expect(runtimes[0]!.status).toBe(RuntimeStatus.READY);
  }, 40_000);
});
