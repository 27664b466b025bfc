import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";

type Library = typeof import("../src/index.js");

async function exercise(lib: Library): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "ar-as-lib-test-"));
  const server = await lib.startActionServer({
    workingDir: dir,
    host: "127.0.0.1",
    shellEnv: { PATH: process.env.PATH ?? "", HOME: dir },
  });
  try {
    const res = await fetch(`${server.url}/execute_action`, {
      method: "POST",
      body: JSON.stringify({ action: { action: "run", args: { command: "echo built" } } }),
    });
    expect(((await res.json()) as { content: string }).content).toBe("built");
    // Multipart parsing (busboy, CommonJS inside the ESM build) must work from the built files too.
    const form = new FormData();
    form.append("file", new Blob(["uploaded"]), "u.txt");
    const up = await fetch(`${server.url}/upload_file?destination=${encodeURIComponent(dir)}`, {
      method: "POST",
      body: form,
    });
    expect(up.status).toBe(200);
    expect(readFileSync(join(dir, "u.txt"), "utf8")).toBe("uploaded");
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the built library entries (same tsup config as dist/)", () => {
  const dir = inject("libraryDir");
  // The built entries import their peer runtime-core from its dist/ (turbo builds it first).
  const core = createRequire(import.meta.url).resolve("@agent-runtime/runtime-core");
  if (!existsSync(core)) throw new Error(`${core} is missing: run \`pnpm build\` for runtime-core first`);

  it("ESM: index.js starts a working server", async () => {
    await exercise((await import(join(dir, "index.js"))) as Library);
  });

  it("CJS: index.cjs starts a working server", async () => {
    await exercise(createRequire(import.meta.url)(join(dir, "index.cjs")) as Library);
  });
});
