import { defineConfig } from "tsup";
import { packageConfig } from "../../tsup.base.ts";

// The shebang makes dist/cli.js (the `agent-runtime-secrets` bin) executable by itself; it is inert in
// the library entry, which node also accepts.
export default defineConfig(
  packageConfig({ entry: ["src/index.ts", "src/cli.ts"], banner: { js: "#!/usr/bin/env node" } }),
);
