import type { z } from "zod";
import type { ImageSpec, OpenHandsServerSchema } from "./spec.js";
import { parseImageSpec } from "./spec.js";

/** Options of {@link openHandsRuntimeSpec}: the image, plus how their server is started. */
export type OpenHandsRuntimeOptions = Omit<z.input<typeof OpenHandsServerSchema>, "kind"> & {
  /** A stock OpenHands runtime image, e.g. `ghcr.io/openhands/runtime:<tag>` (no default: pin yours). */
  image: string;
};

/**
 * A spec for a stock OpenHands runtime image, used unchanged (no steps, nothing installed): their own
 * `action_execution_server`, started through micromamba and poetry from `/openhands/code` on port 60000.
 * `serverLaunch(spec)` gives the command; a runtime adds `SESSION_API_KEY` so the server requires a key.
 *
 * @example
 * ```ts
 * const spec = openHandsRuntimeSpec({ image: "ghcr.io/openhands/runtime:0.62-nikolaik", enableBrowser: false });
 * serverLaunch(spec).argv; // ["/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", ...]
 * ```
 */
export function openHandsRuntimeSpec(options: OpenHandsRuntimeOptions): ImageSpec {
  const { image, ...server } = options;
  return parseImageSpec({
    base: { kind: "registry", image },
    steps: [],
    server: { kind: "openhands", ...server },
  });
}
