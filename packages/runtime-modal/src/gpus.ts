import { type GpuCatalogue, type GpuRequest, parseGpuRequest } from "@agent-runtime/runtime-core";

const upTo = (maxPerContainer: number) => ({ maxPerContainer }) as const;

/**
 * The GPU types Modal accepts for a sandbox's `gpu` (Modal's GPU guide), with how many fit one container, and no
 * prices (a cost plugin prices them). Names are what is sent to Modal: `H100!` (an H100 that is never upgraded
 * to an H200) and `B200+` (a B200 that may run on a B300) are requests of their own, so they stay distinct
 * types; `A100-40GB` and `A10G` are other names of `A100` and `A10`.
 */
export const MODAL_GPU_CATALOGUE: GpuCatalogue = Object.freeze({
  types: Object.freeze({
    T4: upTo(8),
    L4: upTo(8),
    A10: upTo(4),
    L40S: upTo(8),
    A100: upTo(8),
    "A100-80GB": upTo(8),
    "RTX-PRO-6000": upTo(8),
    H100: upTo(8),
    "H100!": upTo(8),
    H200: upTo(8),
    B200: upTo(8),
    "B200+": upTo(8),
  }),
  aliases: Object.freeze({ A10G: "A10", "A100-40GB": "A100" }),
});

/**
 * Parses a GPU request against {@link MODAL_GPU_CATALOGUE} (case-insensitive, spaces allowed around the parts):
 * `normalized` is what runtime-modal sends to Modal (`"a100 : 2"` -> `"A100:2"`). Throws INVALID_ARGUMENT naming
 * the known types, or the most that fit one container.
 *
 * @example
 * ```ts
 * parseModalGpu("h100! : 2").normalized; // "H100!:2"
 * ```
 */
export function parseModalGpu(gpu: string): GpuRequest {
  return parseGpuRequest(gpu, MODAL_GPU_CATALOGUE, "Modal");
}
