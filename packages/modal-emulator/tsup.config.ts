import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { defineConfig } from "tsup";
import { packageConfig } from "../../tsup.base.ts";
import { MODAL_API_PROTO, MODAL_ROUTER_PROTO, PROTO_FILES } from "./src/proto/modal-proto.ts";

export default defineConfig(
  packageConfig({
    entry: ["src/index.ts", "src/cli.ts"],
    // `import.meta.url` in the CJS build (the CLI compares it with argv[1]).
    shims: true,
    async onSuccess() {
      // The bin gets its shebang here (a tsup `banner` would land in every entry).
      for (const file of ["dist/cli.js", "dist/cli.cjs"]) {
        const text = readFileSync(file, "utf8");
        if (!text.startsWith("#!")) writeFileSync(file, `#!/usr/bin/env node\n${text}`);
        chmodSync(file, 0o755);
      }
      // The protos are embedded in the code; a copy ships for readers.
      mkdirSync("dist/modal_proto", { recursive: true });
      writeFileSync(`dist/${PROTO_FILES.api}`, MODAL_API_PROTO);
      writeFileSync(`dist/${PROTO_FILES.router}`, MODAL_ROUTER_PROTO);
    },
  }),
);
