import { RuntimeStatus } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import { type ModalRuntime, TAGS } from "../src/index.js";
import { errorOf, eventually, useEmulator } from "./helpers.js";

const h = useEmulator();
const { provider, guarded } = h;

describe("runtime-modal: per-session overrides", () => {
  it("one provider starts a CPU sandbox and a GPU sandbox, each with its own resources, env, tags and lease", async () => {
    const { guard, cost } = guarded();
    const p = provider({ env: { SHARED: "provider", WHO: "provider" } }, { cost });
    expect(p.supportedOverrides).toContain("gpu");
    const cpu = (await p.create({ sessionId: "ov-cpu" })) as ModalRuntime;
    h.track(cpu);
    const gpu = (await p.create({
      sessionId: "ov-gpu",
      gpu: "T4",
      cpuCores: 0.5,
      memoryMiB: 1024,
      timeoutMs: 600_000,
      idleTimeoutMs: 120_000,
      env: { WHO: "session" },
      labels: { team: "vision" },
      userId: "alice",
    })) as ModalRuntime;
    h.track(gpu);
    await Promise.all([cpu.connect(), gpu.connect()]);

    const sandboxes = h.emulator.listSandboxes();
    const cpuSb = sandboxes.find((s) => s.sandboxId === cpu.sandboxId)!;
    const gpuSb = sandboxes.find((s) => s.sandboxId === gpu.sandboxId)!;
    expect(cpuSb.gpu).toBeUndefined();
    // sandboxApi "v1" (the default) sends CPU sandboxes through Modal's V1 API, as modal@0.11.1 does GPU ones.
    expect(cpuSb.v2).toBe(false);
    expect(gpuSb.gpu).toBe("T4");
    expect(gpuSb.v2).toBe(false);
    expect(gpuSb.tags.team).toBe("vision");
    expect(gpuSb.tags[TAGS.session]).toBe("ov-gpu");
    expect(cpuSb.tags.team).toBeUndefined();

    expect((await cpu.runCommand('echo "$SHARED $WHO"')).content.trim()).toBe("provider provider");
    expect((await gpu.runCommand('echo "$SHARED $WHO"')).content.trim()).toBe("provider session");

    const cpuLease = guard.getLease(cpu.lease!.leaseId)!;
    const gpuLease = guard.getLease(gpu.lease!.leaseId)!;
    expect(cpuLease.gpuCount).toBe(0);
    expect(cpuLease.scope.userId).toBeUndefined();
    expect(cpuLease.lifetimeMs).toBe(3_600_000);
    expect(gpuLease.gpuType).toBe("T4");
    expect(gpuLease.spec).toMatchObject({ cpuCores: 0.5, memoryMiB: 1024, gpu: "T4" });
    expect(gpuLease.scope).toMatchObject({ sessionId: "ov-gpu", userId: "alice" });
    expect(gpuLease.lifetimeMs).toBe(600_000);
    expect(gpu.handle().data.overrides).toMatchObject({
      gpu: "T4",
      userId: "alice",
      labels: { team: "vision" },
    });
  }, 60_000);

  it("validates overrides as the provider's options are, every issue at once", async () => {
    const p = provider({ cpuCores: 0.25, cpuLimitCores: 1, memoryLimitMiB: 2048 });
    const err = await errorOf(
      p.create({
        sessionId: "bad",
        gpu: "Z100",
        cpuCores: 4,
        memoryMiB: 4096,
        labels: { "agent-runtime.session": "x" },
      }),
    );
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toContain('gpu: Unknown GPU type "Z100" for Modal. Known types: A10, A100');
    expect(err.message).toContain("cpuCores: must not exceed the provider's cpuLimitCores (1)");
    expect(err.message).toContain("memoryMiB: must not exceed the provider's memoryLimitMiB (2048)");
    expect(err.message).toContain('labels.agent-runtime.session: the "agent-runtime." prefix is reserved');
    const idle = await errorOf(p.create({ sessionId: "bad", idleTimeoutMs: 7_200_000 }));
    expect(idle.message).toContain("idleTimeoutMs: must not exceed timeoutMs (3600000)");
    const image = await errorOf(p.create({ sessionId: "bad", image: { openhands: 3 } }));
    expect(image.code).toBe("INVALID_ARGUMENT");
    expect(image.message).toContain("image:");
    // A shorter lifetime alone lowers the provider's idle timeout with it.
    const short = await p.create({ sessionId: "short", timeoutMs: 60_000 });
    h.track(short);
    expect(short.status).toBe(RuntimeStatus.STOPPED);
  });

  it("a warm pool serves only its own shape: a GPU create bypasses it, a labels-only create takes a pooled sandbox", async () => {
    const p = provider({ pool: { size: 1 } });
    await eventually(() => p.poolReady === 1, 30_000);
    const gpu = (await p.create({ sessionId: "pool-gpu", gpu: "L4" })) as ModalRuntime;
    h.track(gpu);
    expect(gpu.status).toBe(RuntimeStatus.STOPPED);
    expect(p.poolReady).toBe(1);
    const pooled = (await p.create({ sessionId: "pool-warm", labels: { kind: "warm" } })) as ModalRuntime;
    h.track(pooled);
    expect(pooled.status).toBe(RuntimeStatus.READY);
    await pooled.pendingRetag;
    const tags = h.emulator.listSandboxes().find((s) => s.sandboxId === pooled.sandboxId)!.tags;
    expect(tags.kind).toBe("warm");
    expect(tags[TAGS.session]).toBe("pool-warm");
    expect(tags[TAGS.pool]).toBeUndefined();
  }, 60_000);
});
