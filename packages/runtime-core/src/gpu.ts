import { InvalidArgumentError } from "./errors.js";

/**
 * The GPU types a backend offers, with no prices in it: backends validate GPU requests against their own
 * catalogue, cost plugins derive one from their price tables.
 */
export interface GpuCatalogue {
  /** Canonical type (upper case) -> how many fit one container. */
  readonly types: Readonly<Record<string, { readonly maxPerContainer: number }>>;
  /** Alias (upper case) -> canonical type, e.g. `"H100!"` -> `"H100"`. */
  readonly aliases?: Readonly<Record<string, string>>;
}

/** A parsed GPU request such as `"A100-80GB:2"`. */
export interface GpuRequest {
  /** Canonical type (aliases resolved), e.g. `H100` for `"h100!"`. */
  type: string;
  /** Number of GPUs, at least 1. */
  count: number;
  /** The string as requested. */
  requested: string;
  /** The normalised form to send to a backend: `TYPE` or `TYPE:N` with no spaces. */
  normalized: string;
}

/**
 * Parses `"TYPE"` or `"TYPE:N"` (case-insensitive, spaces around the parts allowed, N >= 1) against a GPU
 * catalogue: aliases resolve to their canonical type, and N is checked against the type's per-container maximum.
 * Throws INVALID_ARGUMENT naming the known types or the maximum.
 *
 * @example
 * ```ts
 * parseGpuRequest(" a100-80gb : 2 ", { types: { "A100-80GB": { maxPerContainer: 8 } } }, "modal");
 * // { type: "A100-80GB", count: 2, requested: " a100-80gb : 2 ", normalized: "A100-80GB:2" }
 * ```
 */
export function parseGpuRequest(gpu: string, catalogue: GpuCatalogue, provider = "provider"): GpuRequest {
  const match = /^\s*([^:\s]+)\s*(?::\s*(\S+)\s*)?$/.exec(gpu);
  const known = Object.keys(catalogue.types).sort();
  const knownText = known.length ? known.join(", ") : "(none: this provider offers no GPUs)";
  if (!match) {
    throw new InvalidArgumentError(
      `Invalid GPU request ${JSON.stringify(gpu)}: use "TYPE" or "TYPE:N", e.g. "H100:2".`,
      ["gpu: invalid format"],
    );
  }
  const name = match[1]!.toUpperCase();
  const type = catalogue.types[name] ? name : catalogue.aliases?.[name];
  const entry = type ? catalogue.types[type] : undefined;
  if (!type || !entry) {
    throw new InvalidArgumentError(
      `Unknown GPU type "${match[1]}" for ${provider}. Known types: ${knownText}.`,
      ["gpu: unknown GPU type"],
    );
  }
  const countText = match[2];
  const count = countText === undefined ? 1 : /^\d+$/.test(countText) ? Number(countText) : Number.NaN;
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(
      `Invalid GPU count in ${JSON.stringify(gpu)}: N must be a whole number >= 1.`,
      ["gpu: invalid count"],
    );
  }
  if (count > entry.maxPerContainer) {
    throw new InvalidArgumentError(
      `GPU request ${JSON.stringify(gpu)} asks for ${count} x ${type}; at most ${entry.maxPerContainer} fit one container.`,
      ["gpu: count above maxPerContainer"],
    );
  }
  return {
    type,
    count,
    requested: gpu,
    normalized: count === 1 && countText === undefined ? type : `${type}:${count}`,
  };
}
