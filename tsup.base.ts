import type { Options } from "tsup";

/**
 * The one tsup configuration every package re-uses: ESM + CJS + d.ts, Node 20, no minification,
 * sourcemaps, a clean `dist/` on each build. Packages pass their entry points and any overrides.
 */
export function packageConfig(overrides: Options = {}): Options {
  return {
    entry: ["src/index.ts"],
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
    platform: "node",
    splitting: false,
    treeshake: true,
    ...overrides,
  };
}
