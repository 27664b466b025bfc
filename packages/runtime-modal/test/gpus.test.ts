import type { CostHooks, SandboxCostSpec } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import { MODAL_GPU_CATALOGUE, type ModalRuntime, modalRuntime, parseModalGpu } from "../src/index.js";
import { thrownBy, useEmulator } from "./helpers.js";

const issueOf = (fn: () => unknown): string => thrownBy(fn).message;

describe("Modal's GPU catalogue", () => {
  it("holds Modal's GPU types with their per-container maximum and no prices", () => {
    expect(Object.keys(MODAL_GPU_CATALOGUE.types).sort()).toEqual([
      "A10",
      "A100",
      "A100-80GB",
      "B200",
      "B200+",
      "H100",
      "H100!",
      "H200",
      "L4",
      "L40S",
      "RTX-PRO-6000",
      "T4",
    ]);
    for (const entry of Object.values(MODAL_GPU_CATALOGUE.types))
      expect(Object.keys(entry)).toEqual(["maxPerContainer"]);
    expect(MODAL_GPU_CATALOGUE.types.A10?.maxPerContainer).toBe(4);
    expect(MODAL_GPU_CATALOGUE.types.H100?.maxPerContainer).toBe(8);
  });

  it("normalises what Modal receives: upper case, no spaces, aliases resolved, pinned types kept apart", () => {
    expect(parseModalGpu("A100 : 2").normalized).toBe("A100:2");
    expect(parseModalGpu(" t4 ").normalized).toBe("T4");
    expect(parseModalGpu("a10g:4").normalized).toBe("A10:4");
    expect(parseModalGpu("A100-40GB").normalized).toBe("A100");
    // "H100!" (never upgraded to an H200) and "B200+" (may run on a B300) are requests of their own.
    expect(parseModalGpu("h100!:8").normalized).toBe("H100!:8");
    expect(parseModalGpu("b200+").normalized).toBe("B200+");
  });

  it("refuses unknown types, counts above the container maximum and malformed requests, saying what fits", () => {
    expect(issueOf(() => parseModalGpu("V100"))).toContain(
      'Unknown GPU type "V100" for Modal. Known types: A10, A100',
    );
    expect(issueOf(() => parseModalGpu("A10:5"))).toContain("at most 4 fit one container");
    expect(issueOf(() => parseModalGpu("H100:0"))).toContain("N must be a whole number >= 1");
    expect(issueOf(() => parseModalGpu("H100:2:3"))).toContain("N must be a whole number >= 1");
    expect(issueOf(() => modalRuntime({ gpu: "A10G:8" }))).toMatch(/gpu: .*at most 4 fit one container/);
  });
});

describe("the GPU string Modal receives (modal-emulator records what the SDK sent)", () => {
  const h = useEmulator();
  const specs: SandboxCostSpec[] = [];
  // A cost plugin of our own: it records what the runtime asks to price (the normalised GPU too).
  const cost: CostHooks = {
    reserve: async ({ spec, lifetimeMs }) => {
      specs.push(spec);
      return { leaseId: `lease-${specs.length}`, reservedUsd: 0, lifetimeMs };
    },
    activate: async () => undefined,
    heartbeat: async () => undefined,
    settle: async (leaseId) => ({ leaseId, chargedUsd: 0, durationMs: 0 }),
  };

  it('"A100 : 2" as the provider\'s option reaches the SDK as "A100:2"; a session\'s "h100!" as "H100!"', async () => {
    const p = h.provider({ gpu: "A100 : 2" }, { cost });
    expect(p.options.gpu).toBe("A100:2");
    const base = (await p.create({ sessionId: "gpu-option" })) as ModalRuntime;
    h.track(base);
    const override = (await p.create({ sessionId: "gpu-override", gpu: "h100!" })) as ModalRuntime;
    h.track(override);
    await Promise.all([base.connect(), override.connect()]);
    const gpuOf = (runtime: ModalRuntime) =>
      h.emulator.listSandboxes().find((s) => s.sandboxId === runtime.sandboxId)?.gpu;
    // Without normalising, the SDK would send the type "A100 " (it splits on ":" and upper-cases).
    expect(gpuOf(base)).toBe("A100:2");
    expect(gpuOf(override)).toBe("H100!");
    expect(specs.map((s) => s.gpu).sort()).toEqual(["A100:2", "H100!"]);
    expect((await override.runCommand("echo on-a-gpu-sandbox")).content.trim()).toBe("on-a-gpu-sandbox");
  }, 60_000);
});
