import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "tsup";
import type { TestProject } from "vitest/node";
import { binConfig, libraryConfig } from "../tsup.config.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** The bundle built for this test run (same config as dist/bin.cjs). */
    binPath: string;
    /** Directory holding index.js / index.cjs built with the library config (same as dist/). */
    libraryDir: string;
  }
}

/**
 * Builds the bundled server and the library entries once per test run with the package's own configs, into
 * private directories (a concurrent `pnpm build` writing dist/ cannot hand the tests a half-written file).
 * The library goes under node_modules/.cache so its peer dependencies (zod, runtime-core) resolve.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const binDir = mkdtempSync(join(tmpdir(), "ar-as-bundle-"));
  const cache = join(import.meta.dirname, "..", "node_modules", ".cache");
  mkdirSync(cache, { recursive: true });
  const libraryDir = mkdtempSync(join(cache, "ar-as-lib-"));
  // One build after the other, and the bundle checked before any test uses it: under load, two concurrent
  // tsup builds once handed the tests a bundle that did not parse ("SyntaxError: Unexpected number"), and once one
  // that did not run.
  const buildBin = () => build({ ...binConfig, outDir: binDir, silent: true, sourcemap: false });
  await buildBin();
  if (!runs(join(binDir, "bin.cjs"))) {
    await buildBin();
    if (!runs(join(binDir, "bin.cjs"))) throw new Error(`the test bundle ${binDir}/bin.cjs does not run`);
  }
  await build({ ...libraryConfig, outDir: libraryDir, silent: true, sourcemap: false, dts: false });
  project.provide("binPath", join(binDir, "bin.cjs"));
  project.provide("libraryDir", libraryDir);
  return () => {
    rmSync(binDir, { recursive: true, force: true });
    rmSync(libraryDir, { recursive: true, force: true });
  };
}

/**
 * True when the bundle runs as far as its argument check: it exits 2 on an unknown flag. A parse check alone let
 * through a bundle that called a helper it did not define ("init_cjs_shims is not defined", exit 1).
 */
function runs(file: string): boolean {
  return (
    spawnSync(process.execPath, [file, "--no-such-flag"], { stdio: "ignore", timeout: 30_000 }).status === 2
  );
}
