import { defineConfig } from "tsup";
import { packageConfig } from "../../tsup.base.ts";

// Two builds so that only the CLI gets the shebang: the library build cleans dist/ except the CLI's files.
export default defineConfig([
  packageConfig({ entry: ["src/index.ts"], clean: ["!cli.*"] }),
  packageConfig({
    entry: ["src/cli.ts"],
    clean: false,
    shims: true,
    banner: { js: "#!/usr/bin/env node" },
  }),
]);
