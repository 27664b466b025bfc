import { defineConfig } from "tsup";
import { packageConfig } from "../../tsup.base.ts";

// `shims`: the CJS build gets an `import.meta.url`, which the driver loader hands to `createRequire`.
export default defineConfig(packageConfig({ shims: true }));
