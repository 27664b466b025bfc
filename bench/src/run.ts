/**
 * Runs every benchmark file (`src/*.bench.ts`) one after another, or only those whose names contain the
 * arguments: `pnpm bench -- server cost`. Each file is a standalone script that measures a baseline in the
 * same run and prints ratios; results are also written to `.bench-results/<name>.json`.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const dir = import.meta.dirname;
const filters = process.argv.slice(2).filter((a) => a !== "--");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
let failed = 0;
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  const r = spawnSync(process.execPath, ["--import", "tsx", join(dir, file)], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
if (failed > 0) {
  console.error(`${failed} benchmark file(s) failed`);
  process.exit(1);
}
