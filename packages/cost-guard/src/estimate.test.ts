import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { isRuntimeError } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import { tempDir } from "../test/temp-dir.js";
import { estimateCost } from "./estimate.js";
import { parseGpuRequest } from "./gpu.js";
import { DEFAULT_PRICE_TABLE, loadPriceTableFile, resolvePriceTable } from "./prices.js";

const DAY_MS = 86_400_000;
const modal = (spec: Record<string, unknown>) =>
  ({ provider: "modal", ...spec }) as Parameters<typeof estimateCost>[0];
const round = (n: number, digits: number) => Number(n.toFixed(digits));

function thrown(fn: () => unknown): Error & { code?: string; issues?: string[] } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected a throw");
}

describe("worked examples of modal-pricing.md (Sandbox rates, no region)", () => {
  it.each([
    ["0.125 core / 128 MiB", { cpuCores: 0.125, memoryMiB: 128 }, 0.021, 0.5],
    ["1 core / 2 GiB", { cpuCores: 1, memoryMiB: 2048 }, 0.19, 4.56],
    ["2 cores / 4 GiB", { cpuCores: 2, memoryMiB: 4096 }, 0.38, 9.12],
    ["1 core / 4 GiB + H100", { cpuCores: 1, memoryMiB: 4096, gpu: "H100" }, 4.19, 100.49],
  ])("%s costs $%s/h and $%s per 24 h at request", (_name, spec, hourly, day) => {
    const e = estimateCost(modal(spec), DAY_MS, DEFAULT_PRICE_TABLE);
    expect(round(e.hourlyUsd, hourly < 0.1 ? 3 : 2)).toBe(hourly);
    expect(round(e.perSecondUsd * 86_400, 2)).toBe(day);
  });

  it("1 core / 2 GiB without cpuLimit is priced bursting to 17 cores in the worst case: $2.46/h, $59.05/24 h", () => {
    const e = estimateCost(modal({ cpuCores: 1, memoryMiB: 2048 }), DAY_MS, DEFAULT_PRICE_TABLE);
    expect(e.worstCaseCpuCores).toBe(17);
    expect(round(e.worstCaseHourlyUsd, 2)).toBe(2.46);
    expect(round(e.worstCaseUsd, 2)).toBe(59.05);
  });

  it("H100:8 (GPU only) costs $31.59/h and $758.25 per 24 h", () => {
    const base = estimateCost(modal({ cpuCores: 1, memoryMiB: 1024 }), DAY_MS, DEFAULT_PRICE_TABLE);
    const gpu = estimateCost(
      modal({ cpuCores: 1, memoryMiB: 1024, gpu: "H100:8" }),
      DAY_MS,
      DEFAULT_PRICE_TABLE,
    );
    expect(round(gpu.hourlyUsd - base.hourlyUsd, 2)).toBe(31.59);
    expect(round(gpu.worstCaseUsd - base.worstCaseUsd, 2)).toBe(758.25);
  });

  it("a CPU limit caps the worst case; the 8-core T4 lesson is priced by cores, not GPU type alone", () => {
    const capped = estimateCost(
      modal({ cpuCores: 1, cpuLimitCores: 1, memoryMiB: 2048 }),
      3_600_000,
      DEFAULT_PRICE_TABLE,
    );
    expect(round(capped.worstCaseUsd, 3)).toBe(0.19);
    const t4 = estimateCost(
      modal({ cpuCores: 8, cpuLimitCores: 8, memoryMiB: 32768, gpu: "T4" }),
      3_600_000,
      DEFAULT_PRICE_TABLE,
    );
    expect(t4.worstCaseUsd).toBeGreaterThan(0.59 + 8 * 0.1419);
  });

  it("region pins multiply the whole bill: broad x1.5, narrow x1.75", () => {
    const plain = estimateCost(
      modal({ cpuCores: 1, memoryMiB: 2048, gpu: "A10G" }),
      DAY_MS,
      DEFAULT_PRICE_TABLE,
    );
    const us = estimateCost(
      modal({ cpuCores: 1, memoryMiB: 2048, gpu: "A10G", region: "us" }),
      DAY_MS,
      DEFAULT_PRICE_TABLE,
    );
    const usWest = estimateCost(
      modal({ cpuCores: 1, memoryMiB: 2048, gpu: "A10G", region: "us-west" }),
      DAY_MS,
      DEFAULT_PRICE_TABLE,
    );
    expect(us.regionMultiplier).toBe(1.5);
    expect(usWest.regionMultiplier).toBe(1.75);
    expect(us.worstCaseUsd).toBeCloseTo(plain.worstCaseUsd * 1.5, 9);
    expect(usWest.hourlyUsd).toBeCloseTo(plain.hourlyUsd * 1.75, 9);
  });

  it("disk is billed as memory at 20:1", () => {
    const a = estimateCost(modal({ cpuCores: 1, memoryMiB: 1024 }), 3_600_000, DEFAULT_PRICE_TABLE);
    const b = estimateCost(
      modal({ cpuCores: 1, memoryMiB: 1024, diskMiB: 20 * 1024 }),
      3_600_000,
      DEFAULT_PRICE_TABLE,
    );
    expect(b.hourlyUsd - a.hourlyUsd).toBeCloseTo(0.00000667 * 3600, 9);
  });

  it("the local and docker backends cost nothing unless configured", () => {
    expect(
      estimateCost({ provider: "docker", cpuCores: 4, memoryMiB: 8192 }, DAY_MS, DEFAULT_PRICE_TABLE)
        .worstCaseUsd,
    ).toBe(0);
    expect(
      estimateCost({ provider: "local", cpuCores: 4, memoryMiB: 8192 }, DAY_MS, DEFAULT_PRICE_TABLE)
        .worstCaseUsd,
    ).toBe(0);
    const priced = resolvePriceTable({ providers: { local: { cpuPerCoreSecondUsd: 0.00001 } } });
    expect(priced.version).toBe(`${DEFAULT_PRICE_TABLE.version}+custom`);
    expect(
      estimateCost({ provider: "local", cpuCores: 1, memoryMiB: 1024 }, 1000, priced).worstCaseUsd,
    ).toBeCloseTo(0.00001, 12);
  });
});

describe("GPU requests", () => {
  const prices = DEFAULT_PRICE_TABLE.providers.modal!;
  it("parses TYPE and TYPE:N case-insensitively and bills aliases as their base type", () => {
    expect(parseGpuRequest("h100", prices)).toMatchObject({ type: "H100", count: 1 });
    expect(parseGpuRequest("A100-80GB:2", prices)).toMatchObject({ type: "A100-80GB", count: 2 });
    expect(parseGpuRequest("a10g:4", prices)).toMatchObject({ type: "A10", count: 4 });
    expect(parseGpuRequest("H100!", prices).type).toBe("H100");
    expect(parseGpuRequest("b200+:8", prices).type).toBe("B200");
    expect(parseGpuRequest("A100-40GB", prices).type).toBe("A100");
  });

  it("rejects unknown types (listing the known ones), bad counts and counts above the per-container maximum", () => {
    const unknown = thrown(() => parseGpuRequest("V100", prices, "modal"));
    expect(unknown.code).toBe("INVALID_ARGUMENT");
    expect(unknown.message).toContain('Unknown GPU type "V100" for modal');
    expect(unknown.message).toContain("H100");
    expect(thrown(() => parseGpuRequest("H100:0", prices)).message).toContain(
      "N must be a whole number >= 1",
    );
    expect(thrown(() => parseGpuRequest("H100:x", prices)).code).toBe("INVALID_ARGUMENT");
    expect(thrown(() => parseGpuRequest("A10:5", prices)).message).toContain("at most 4");
    expect(thrown(() => parseGpuRequest(":2", prices)).message).toContain('"TYPE:N"');
  });
});

describe("spec validation", () => {
  it("names every bad field and how to fix it", () => {
    const err = thrown(() => estimateCost(modal({ cpuCores: 0, memoryMiB: -1 }), 1000, DEFAULT_PRICE_TABLE));
    expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
    expect(err.issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^spec\.cpuCores:/),
        expect.stringMatching(/^spec\.memoryMiB:/),
      ]),
    );
    expect(
      thrown(() =>
        estimateCost(modal({ cpuCores: 2, cpuLimitCores: 1, memoryMiB: 1 }), 1000, DEFAULT_PRICE_TABLE),
      ).message,
    ).toContain("cpuLimitCores (1) is below cpuCores (2)");
    expect(
      thrown(() => estimateCost(modal({ cpuCores: 1, memoryMiB: 1 }), 0, DEFAULT_PRICE_TABLE)).message,
    ).toContain("lifetimeMs");
    const provider = thrown(() =>
      estimateCost({ provider: "e2b", cpuCores: 1, memoryMiB: 1 }, 1000, DEFAULT_PRICE_TABLE),
    );
    expect(provider.message).toContain('No prices for provider "e2b"');
    expect(provider.message).toContain("Known providers: docker, local, modal");
  });
});

describe("price table overrides", () => {
  it("merges a subset over the defaults and keeps the default table frozen", () => {
    const t = resolvePriceTable({
      version: "acme-1",
      providers: {
        modal: {
          memoryPerGiBSecondUsd: 0.00000672,
          gpus: { h100: { perSecondUsd: 0.001 }, X1: { perSecondUsd: 0.01, maxPerContainer: 2 } },
        },
      },
    });
    expect(t.version).toBe("acme-1");
    expect(t.providers.modal!.memoryPerGiBSecondUsd).toBe(0.00000672);
    expect(t.providers.modal!.cpuPerCoreSecondUsd).toBe(0.00003942);
    expect(t.providers.modal!.gpus.H100).toEqual({ perSecondUsd: 0.001, maxPerContainer: 8 });
    expect(t.providers.modal!.gpus.X1!.maxPerContainer).toBe(2);
    expect(Object.isFrozen(DEFAULT_PRICE_TABLE.providers.modal!.gpus)).toBe(true);
    expect(DEFAULT_PRICE_TABLE.providers.modal!.gpus.H100!.perSecondUsd).toBe(0.001097);
  });

  it("reports bad overrides with their paths", () => {
    const neg = thrown(() => resolvePriceTable({ providers: { modal: { cpuPerCoreSecondUsd: -1 } } }));
    expect(neg.issues?.[0]).toMatch(/^providers\.modal\.cpuPerCoreSecondUsd:/);
    expect(
      thrown(() => resolvePriceTable({ providers: { fly: { cpuPerCoreSecondUsd: 1 } } })).message,
    ).toContain('adds provider "fly" without');
    expect(thrown(() => resolvePriceTable({ providers: { modal: { gpus: { Z9: {} } } } })).message).toContain(
      "without perSecondUsd",
    );
    expect(
      thrown(() => resolvePriceTable({ providers: { modal: { gpuAliases: { Q: "NOPE" } } } })).message,
    ).toContain('points at "NOPE"');
    expect(thrown(() => resolvePriceTable({ providers: { modal: { cpuRate: 1 } } } as never)).code).toBe(
      "INVALID_ARGUMENT",
    );
  });

  it("loads overrides from a JSON file, with clear errors for a missing file or bad JSON", () => {
    const dir = tempDir("cg-prices-");
    const file = join(dir, "prices.json");
    writeFileSync(
      file,
      JSON.stringify({
        effectiveDate: "2027-01-01",
        providers: { fly: { cpuPerCoreSecondUsd: 0.00002, memoryPerGiBSecondUsd: 0.000003 } },
      }),
    );
    const t = loadPriceTableFile(file);
    expect(t.effectiveDate).toBe("2027-01-01");
    expect(estimateCost({ provider: "fly", cpuCores: 1, memoryMiB: 1024 }, 1000, t).worstCaseUsd).toBeCloseTo(
      0.000023,
      12,
    );
    expect(thrown(() => loadPriceTableFile(join(dir, "missing.json"))).code).toBe("NOT_FOUND");
    writeFileSync(file, "{ nope");
    expect(thrown(() => loadPriceTableFile(file)).message).toContain("is not valid JSON");
  });
});
