import { build } from "tsup";
import { binConfig } from "../tsup.config.ts";

/** Builds the bundled server (dist/bin.cjs) once per test run, so bin tests never run a stale bundle. */
export default async function setup(): Promise<void> {
  await build({ ...binConfig, silent: true, sourcemap: false });
}
