import {
  type GpuCatalogue,
  type GpuRequest,
  InvalidArgumentError,
  parseGpuRequest as parseCatalogueGpuRequest,
} from "@agent-runtime/runtime-core";
import type { ProviderPrices } from "./prices.js";

export type { GpuRequest } from "@agent-runtime/runtime-core";

/** The GPU catalogue of a provider's prices (no prices in it): each priced type, and the aliases. */
export function gpuCatalogue(prices: ProviderPrices): GpuCatalogue {
  return {
    types: Object.fromEntries(
      Object.entries(prices.gpus).map(([type, g]) => [type, { maxPerContainer: g.maxPerContainer }]),
    ),
    aliases: prices.gpuAliases,
  };
}

/**
 * Parses `"TYPE"` or `"TYPE:N"` against a provider's GPU prices: runtime-core's `parseGpuRequest` over the
 * {@link gpuCatalogue} of `prices`, with issue paths under `spec.` (a request's `spec.gpu`). An unknown type
 * also says to add it to the price table. Throws INVALID_ARGUMENT.
 *
 * @example
 * ```ts
 * parseGpuRequest("a10g:2", providerPrices(DEFAULT_PRICE_TABLE, "modal"), "modal");
 * // { type: "A10", count: 2, requested: "a10g:2", normalized: "A10:2" }
 * ```
 */
export function parseGpuRequest(gpu: string, prices: ProviderPrices, provider = "provider"): GpuRequest {
  try {
    return parseCatalogueGpuRequest(gpu, gpuCatalogue(prices), provider);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    // runtime-core names the issue; what to do about an unpriced type is cost-guard's to say.
    const unpriced = err.issues.includes("gpu: unknown GPU type");
    throw new InvalidArgumentError(
      unpriced
        ? `${err.message} Add it to the price table (prices.providers.${provider}.gpus) to use it.`
        : err.message,
      err.issues.map((issue) => `spec.${issue}`),
      { cause: err },
    );
  }
}
