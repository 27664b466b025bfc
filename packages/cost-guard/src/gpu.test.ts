import {
  type GpuRequest as CoreGpuRequest,
  parseGpuRequest as coreParseGpuRequest,
  type InvalidArgumentError,
  silentLogger,
} from "@agent-runtime/runtime-core";
import { describe, expect, expectTypeOf, it } from "vitest";
import { estimateCost, providerPrices } from "./estimate.js";
import { type GpuRequest, gpuCatalogue, parseGpuRequest } from "./gpu.js";
import { costGuard } from "./plugin.js";
import { DEFAULT_PRICE_TABLE, resolvePriceTable } from "./prices.js";

const modal = providerPrices(DEFAULT_PRICE_TABLE, "modal");

function thrown(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    return err as InvalidArgumentError;
  }
  throw new Error("expected a throw");
}

describe("GPU requests priced through runtime-core's parser", () => {
  it("derives a catalogue without prices from a provider's price table", () => {
    const catalogue = gpuCatalogue(modal);
    expect(catalogue.types.A10).toEqual({ maxPerContainer: 4 });
    expect(catalogue.aliases).toMatchObject({ A10G: "A10", "H100!": "H100" });
    expect(JSON.stringify(catalogue)).not.toContain("perSecondUsd");
    // The same answer as runtime-core's parser over that catalogue (one parser, not two).
    for (const gpu of ["h100", " a10g : 4 ", "B200+:8", "A100-80GB:2"]) {
      expect(parseGpuRequest(gpu, modal, "modal")).toEqual(coreParseGpuRequest(gpu, catalogue, "modal"));
    }
    expect(parseGpuRequest(" a10g : 4 ", modal)).toEqual({
      type: "A10",
      count: 4,
      requested: " a10g : 4 ",
      normalized: "A10:4",
    });
    expectTypeOf<GpuRequest>().toEqualTypeOf<CoreGpuRequest>();
  });

  it("an unpriced GPU says to add it to the price table; issues sit under spec.gpu", () => {
    const unknown = thrown(() => parseGpuRequest("V100", modal, "modal"));
    expect(unknown.code).toBe("INVALID_ARGUMENT");
    expect(unknown.message).toContain('Unknown GPU type "V100" for modal. Known types: A10, A100');
    expect(unknown.message).toContain("Add it to the price table (prices.providers.modal.gpus) to use it.");
    expect(unknown.issues).toEqual(["spec.gpu: unknown GPU type"]);
    const tooMany = thrown(() => parseGpuRequest("A10:5", modal, "modal"));
    expect(tooMany.message).toContain("at most 4 fit one container");
    expect(tooMany.message).not.toContain("price table");
    expect(tooMany.issues).toEqual(["spec.gpu: count above maxPerContainer"]);
    expect(thrown(() => parseGpuRequest("H100:0", modal)).issues).toEqual(["spec.gpu: invalid count"]);

    const local = thrown(() =>
      estimateCost({ provider: "local", cpuCores: 1, memoryMiB: 1024, gpu: "T4" }, 1000, DEFAULT_PRICE_TABLE),
    );
    expect(local.message).toContain("Known types: (none: this provider offers no GPUs)");
    expect(local.message).toContain("prices.providers.local.gpus");
  });

  it("a GPU added to the price table can be reserved; an unpriced one is refused before anything is written", async () => {
    const prices = { providers: { modal: { gpus: { V100: { perSecondUsd: 0.0004, maxPerContainer: 2 } } } } };
    expect(parseGpuRequest("v100:2", providerPrices(resolvePriceTable(prices), "modal"))).toMatchObject({
      type: "V100",
      normalized: "V100:2",
    });
    const g = costGuard({ enforceIntervalMs: 0, prices }, { logger: silentLogger });
    const h = costGuard({ enforceIntervalMs: 0 }, { logger: silentLogger });
    try {
      const lease = await g.reserve({
        spec: { provider: "modal", cpuCores: 1, memoryMiB: 1024, gpu: "V100:2" },
        lifetimeMs: 1000,
      });
      expect(lease.estimate.gpu).toMatchObject({ type: "V100", count: 2 });
      await expect(
        h.reserve({
          spec: { provider: "modal", cpuCores: 1, memoryMiB: 1024, gpu: "V100" },
          lifetimeMs: 1000,
        }),
      ).rejects.toThrow(/Add it to the price table/);
      expect(h.openLeases()).toEqual([]);
    } finally {
      g.close();
      h.close();
    }
  });
});
