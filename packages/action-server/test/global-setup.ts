import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "tsup";
import type { TestProject } from "vitest/node";
import { binConfig } from "../tsup.config.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** The bundle built for this test run (same config as dist/bin.cjs). */
    binPath: string;
  }
}

/**
 * Builds the bundled server once per test run with the package's own bin config, into a private directory
 * (a concurrent `pnpm build` writing dist/ cannot hand the tests a half-written file).
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const outDir = mkdtempSync(join(tmpdir(), "ar-as-bundle-"));
  await build({ ...binConfig, outDir, silent: true, sourcemap: false });
  project.provide("binPath", join(outDir, "bin.cjs"));
  return () => rmSync(outDir, { recursive: true, force: true });
}
