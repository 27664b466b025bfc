import type { SandboxCostSpec } from "@agent-runtime/runtime-core";
import { InvalidArgumentError, parseOrThrow } from "@agent-runtime/runtime-core";
import { z } from "zod";
import { type GpuRequest, parseGpuRequest } from "./gpu.js";
import type { PriceTable, ProviderPrices } from "./prices.js";

/** Validates a {@link SandboxCostSpec} (plus optional `diskMiB`). */
export const CostSpecSchema = z.object({
  provider: z.string().min(1, "name the backend, e.g. modal or local"),
  cpuCores: z.number().positive().finite(),
  cpuLimitCores: z.number().positive().finite().optional(),
  memoryMiB: z.number().positive().finite(),
  memoryLimitMiB: z.number().positive().finite().optional(),
  gpu: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  diskMiB: z.number().nonnegative().finite().optional(),
});

/** What a sandbox will use, for pricing: runtime-core's {@link SandboxCostSpec} plus an optional disk size. */
export interface CostSpec extends SandboxCostSpec {
  /** Disk size in MiB, billed as memory at the provider's `diskToMemoryRatio`. */
  diskMiB?: number;
}

/** The price of a sandbox spec: rates at request and at the worst case, and the worst-case total. */
export interface CostEstimate {
  provider: string;
  /** Version of the price table used. */
  priceTableVersion: string;
  /** USD per second at the requested CPU and memory (the floor the provider bills). */
  perSecondUsd: number;
  /** USD per hour at the requested CPU and memory. */
  hourlyUsd: number;
  /** USD per second at the CPU and memory ceilings (request + burst when no limit is set). */
  worstCasePerSecondUsd: number;
  /** USD per hour at the ceilings. */
  worstCaseHourlyUsd: number;
  /** Lifetime the worst case covers, in ms. */
  lifetimeMs: number;
  /** `worstCasePerSecondUsd x lifetime`: what a reservation holds. */
  worstCaseUsd: number;
  /** CPU cores priced in the worst case. */
  worstCaseCpuCores: number;
  /** Memory priced in the worst case, in MiB. */
  worstCaseMemoryMiB: number;
  /** The GPU request, when any. */
  gpu?: GpuRequest;
  /** Region multiplier applied to the whole bill (1 without a region pin). */
  regionMultiplier: number;
}

/** Looks up a provider's prices or throws INVALID_ARGUMENT naming the known providers. */
export function providerPrices(table: PriceTable, provider: string): ProviderPrices {
  const prices = table.providers[provider];
  if (!prices) {
    const known = Object.keys(table.providers).sort().join(", ");
    throw new InvalidArgumentError(
      `No prices for provider "${provider}" in price table ${table.version}. Known providers: ${known}. ` +
        `Add it under prices.providers.${provider} (cpuPerCoreSecondUsd, memoryPerGiBSecondUsd).`,
      ["spec.provider: unknown provider"],
    );
  }
  return prices;
}

/** The multiplier a region pin applies to the whole bill. */
export function regionMultiplier(prices: ProviderPrices, region: string | undefined): number {
  if (!region) return 1;
  const named = prices.regionMultipliers[region.toLowerCase()];
  if (named !== undefined) return named;
  return region.includes("-") ? prices.narrowRegionMultiplier : prices.broadRegionMultiplier;
}

/**
 * Prices a sandbox spec for a lifetime. The worst case uses the CPU ceiling (the limit, or request +
 * `defaultCpuBurstCores` when no limit is set), the memory limit when set, every GPU, and the region multiplier.
 *
 * @example
 * ```ts
 * const e = estimateCost({ provider: "modal", cpuCores: 1, memoryMiB: 4096, gpu: "H100" }, 86_400_000, table);
 * e.hourlyUsd; // ~4.19
 * ```
 */
export function estimateCost(spec: CostSpec, lifetimeMs: number, table: PriceTable): CostEstimate {
  return estimateParsed(parseOrThrow(CostSpecSchema, spec, "sandbox cost spec", "spec"), lifetimeMs, table);
}

/** {@link estimateCost} for a spec already validated with {@link CostSpecSchema}. */
export function estimateParsed(
  s: z.output<typeof CostSpecSchema>,
  lifetimeMs: number,
  table: PriceTable,
): CostEstimate {
  if (!Number.isFinite(lifetimeMs) || lifetimeMs <= 0) {
    throw new InvalidArgumentError(
      `Invalid lifetimeMs ${lifetimeMs}: give the sandbox timeout in ms (> 0).`,
      ["lifetimeMs: must be a positive number"],
    );
  }
  if (s.cpuLimitCores !== undefined && s.cpuLimitCores < s.cpuCores) {
    throw new InvalidArgumentError(`cpuLimitCores (${s.cpuLimitCores}) is below cpuCores (${s.cpuCores}).`, [
      "spec.cpuLimitCores: must be >= cpuCores",
    ]);
  }
  if (s.memoryLimitMiB !== undefined && s.memoryLimitMiB < s.memoryMiB) {
    throw new InvalidArgumentError(
      `memoryLimitMiB (${s.memoryLimitMiB}) is below memoryMiB (${s.memoryMiB}).`,
      ["spec.memoryLimitMiB: must be >= memoryMiB"],
    );
  }
  const prices = providerPrices(table, s.provider);
  const gpu = s.gpu ? parseGpuRequest(s.gpu, prices, s.provider) : undefined;
  const multiplier = regionMultiplier(prices, s.region);
  const diskAsMemoryMiB = (s.diskMiB ?? 0) / prices.diskToMemoryRatio;
  const gpuPerSecond = gpu ? prices.gpus[gpu.type]!.perSecondUsd * gpu.count : 0;
  const rate = (cores: number, memoryMiB: number): number =>
    (cores * prices.cpuPerCoreSecondUsd +
      ((memoryMiB + diskAsMemoryMiB) / 1024) * prices.memoryPerGiBSecondUsd +
      gpuPerSecond) *
    multiplier;
  const worstCaseCpuCores = s.cpuLimitCores ?? s.cpuCores + prices.defaultCpuBurstCores;
  const worstCaseMemoryMiB = s.memoryLimitMiB ?? s.memoryMiB;
  const perSecondUsd = rate(s.cpuCores, s.memoryMiB);
  const worstCasePerSecondUsd = rate(worstCaseCpuCores, worstCaseMemoryMiB);
  return {
    provider: s.provider,
    priceTableVersion: table.version,
    perSecondUsd,
    hourlyUsd: perSecondUsd * 3600,
    worstCasePerSecondUsd,
    worstCaseHourlyUsd: worstCasePerSecondUsd * 3600,
    lifetimeMs,
    worstCaseUsd: (worstCasePerSecondUsd * lifetimeMs) / 1000,
    worstCaseCpuCores,
    worstCaseMemoryMiB,
    ...(gpu ? { gpu } : {}),
    regionMultiplier: multiplier,
  };
}
