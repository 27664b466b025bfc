import { costGuard } from "@agent-runtime/cost-guard";
import type { CostHooks, RuntimeError } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import type { ModalRuntimeOptions } from "../src/index.js";
import { errorOf, eventually, useEmulator } from "./helpers.js";

// The messages docs/production.md quotes in its troubleshooting table: if one changes, change the doc too.

const h = useEmulator();
const NO_RETRY = { maxAttempts: 1, initialDelayMs: 10, maxDelayMs: 10 };
let sessions = 0;

async function connectError(extra: ModalRuntimeOptions, cost?: CostHooks): Promise<RuntimeError> {
  const p = h.provider(extra, cost ? { cost } : {});
  const runtime = h.track(await p.create({ sessionId: `ts-${++sessions}` }));
  return errorOf(runtime.connect());
}

describe("docs/production.md troubleshooting table", () => {
  it("a token Modal rejects (revoked, other workspace): UNAUTHORIZED with the token steps", async () => {
    h.emulator.faults.failNext("AuthTokenGet", "UNAUTHENTICATED", 10, "Invalid token");
    const err = await connectError({ appName: "docs-app", retry: NO_RETRY });
    expect(err.code).toBe("UNAUTHORIZED");
    expect(err.message).toMatch(
      /^Looking up the Modal App "docs-app" failed: UNAUTHENTICATED: Invalid token\. Create a token with `modal token new`/,
    );
  });

  it("no network (Modal unreachable): UNAVAILABLE after the retries", async () => {
    const err = await connectError({ serverUrl: "http://127.0.0.1:9", appName: "docs-app", retry: NO_RETRY });
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.message).toMatch(/^Looking up the Modal App "docs-app" failed: UNAVAILABLE: /);
    expect(err.message).toContain(
      "Modal is unreachable or failing; retry later (retries with backoff were already made).",
    );
  }, 30_000);

  it("an image build that fails: FAILED_PRECONDITION naming the build", async () => {
    h.emulator.faults.failImageBuilds(1, "RUN apt-get install -y nosuchpackage: exit code 100");
    const err = await connectError({ retry: NO_RETRY });
    expect(err.code).toBe("FAILED_PRECONDITION");
    expect(err.message).toMatch(/^Building the Modal image failed: Image build for im-\S+ failed/);
    expect(err.message).toContain("RUN apt-get install -y nosuchpackage: exit code 100");
    expect(err.message).toContain("(fix the image spec; the build log is in the Modal dashboard)");
  });

  it("eviction of a running sandbox: later calls fail with DISCONNECTED", async () => {
    const p = h.provider();
    const runtime = await p.create({ sessionId: "evicted" });
    h.track(runtime);
    await runtime.connect();
    h.emulator.faults.evict(runtime.sandboxId!, "MEMORY_MANAGER_EVICTION");
    await eventually(() => runtime.status === "STATUS$ERROR_RUNTIME_DISCONNECTED", 10_000);
    const err = await errorOf(runtime.runCommand("echo hi"));
    expect(err.code).toBe("DISCONNECTED");
    expect(err.message).toMatch(
      /^The modal sandbox is gone \(the sandbox (was terminated \(exit code 137\)|stopped \(exit code \d+: the server exited, the idle timeout passed, or Modal evicted it\))\); create a new runtime\.$/,
    );
  });

  it("a budget that cannot fit the sandbox: BUDGET_EXCEEDED before anything is created", async () => {
    const guard = costGuard({ enforceIntervalMs: 0, budgets: [{ limitUsd: 0.01 }] });
    try {
      const cost: CostHooks = {
        reserve: (request) => guard.reserve(request),
        activate: (id, sandboxId) => guard.activate(id, sandboxId),
        heartbeat: (id) => guard.heartbeat(id),
        settle: (id, options) => guard.settle(id, options),
      };
      const err = await connectError({}, cost);
      expect(err.code).toBe("BUDGET_EXCEEDED");
      expect(err.message).toMatch(
        /^Reservation refused: budget "global\/total" \(global, total\) would be exceeded: spent \$0\.00 \+ reserved \$0\.00 \+ requested \$\d+\.\d+ > limit \$0\.01\. Nothing was created\./,
      );
    } finally {
      guard.close();
    }
  });
});
