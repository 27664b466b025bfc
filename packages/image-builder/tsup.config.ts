import { defineConfig } from "tsup";
import { packageConfig } from "../../tsup.base.ts";

// Two builds so that only the CLI gets the hashbang. Each cleans only its own outputs (tsup's `clean` globs
// are exclusions from `**/*`), so running them side by side is safe.
export default defineConfig([
  packageConfig({ entry: ["src/index.ts", "src/modal.ts"], clean: ["!cli.*"] }),
  packageConfig({
    entry: ["src/cli.ts"],
    clean: ["!index.*", "!modal.*"],
    banner: { js: "#!/usr/bin/env node" },
    shims: true,
  }),
]);
