import { fileURLToPath } from "node:url";
import { defineConfig, type Options } from "tsup";
import { packageConfig } from "../../tsup.base.ts";

/**
 * `dist/bin.cjs`: one self-contained file (zod, fflate, busboy and runtime-core inlined, no native addons),
 * built from runtime-core's source so it never depends on a stale dist/.
 */
export const binConfig: Options = packageConfig({
  entry: { bin: "src/bin.ts" },
  format: ["cjs"],
  dts: false,
  clean: false,
  target: "node18",
  // esbuild already tree-shakes the bundle; the extra rollup pass raced with esbuild on the same output file.
  treeshake: false,
  noExternal: [/.*/],
  esbuildOptions(options) {
    options.alias = {
      "@agent-runtime/runtime-core": fileURLToPath(new URL("../runtime-core/src/index.ts", import.meta.url)),
    };
  },
});

/** The library entry (ESM + CJS + d.ts): runtime-core and zod stay peer dependencies; busboy and fflate are inlined. */
export const libraryConfig: Options = packageConfig({
  entry: ["src/index.ts"],
  shims: true,
  // Both configs build at once into dist/: a clean here could delete bin.cjs after it was written. The build
  // script empties dist/ before tsup starts instead.
  clean: false,
  esbuildOptions(options, context) {
    // busboy is CommonJS and calls require("stream"): give the ESM build a real require.
    if (context.format === "esm") {
      options.banner = {
        js: 'import { createRequire as __arCreateRequire } from "node:module";\nconst require = __arCreateRequire(import.meta.url);',
      };
    }
  },
});

export default defineConfig([libraryConfig, binConfig]);
