import { readFileSync } from "node:fs";
import { join } from "node:path";

function readVersion(): string {
  try {
    // Both src/ (tests) and dist/ (built) sit one level below the package root.
    const here = typeof __dirname === "string" ? __dirname : import.meta.dirname;
    const pkg = JSON.parse(readFileSync(join(here, "..", "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/** This package's version (from its package.json). */
export const VERSION: string = readVersion();
