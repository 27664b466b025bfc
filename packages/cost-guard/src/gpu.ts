import { InvalidArgumentError } from "@agent-runtime/runtime-core";
import type { ProviderPrices } from "./prices.js";

/** A parsed GPU request such as `"A100-80GB:2"`. */
export interface GpuRequest {
  /** Canonical type the request is billed as (aliases resolved), e.g. `H100` for `"h100!"`. */
  type: string;
  /** Number of GPUs, at least 1. */
  count: number;
  /** The string as requested. */
  requested: string;
}

/**
 * Parses `"TYPE"` or `"TYPE:N"` (case-insensitive, N >= 1) against a provider's GPU prices: aliases resolve
 * to the type they are billed as, and N is checked against the type's per-container maximum.
 * Throws INVALID_ARGUMENT naming the known types or the maximum.
 */
export function parseGpuRequest(gpu: string, prices: ProviderPrices, provider = "provider"): GpuRequest {
  const match = /^\s*([^:\s]+)\s*(?::\s*(\S+)\s*)?$/.exec(gpu);
  const known = Object.keys(prices.gpus).sort();
  const knownText = known.length ? known.join(", ") : "(none: this provider has no GPU prices)";
  if (!match) {
    throw new InvalidArgumentError(
      `Invalid GPU request ${JSON.stringify(gpu)}: use "TYPE" or "TYPE:N", e.g. "H100:2".`,
      ["spec.gpu: invalid format"],
    );
  }
  const name = match[1]!.toUpperCase();
  const type = prices.gpus[name] ? name : prices.gpuAliases[name];
  const price = type ? prices.gpus[type] : undefined;
  if (!type || !price) {
    throw new InvalidArgumentError(
      `Unknown GPU type "${match[1]}" for ${provider}. Known types: ${knownText}. Add it to the price table to use it.`,
      ["spec.gpu: unknown GPU type"],
    );
  }
  const countText = match[2];
  const count = countText === undefined ? 1 : /^\d+$/.test(countText) ? Number(countText) : Number.NaN;
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(
      `Invalid GPU count in ${JSON.stringify(gpu)}: N must be a whole number >= 1.`,
      ["spec.gpu: invalid count"],
    );
  }
  if (count > price.maxPerContainer) {
    throw new InvalidArgumentError(
      `GPU request ${JSON.stringify(gpu)} asks for ${count} x ${type}; at most ${price.maxPerContainer} fit one container.`,
      ["spec.gpu: count above maxPerContainer"],
    );
  }
  return { type, count, requested: gpu };
}
