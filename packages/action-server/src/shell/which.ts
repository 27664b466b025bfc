import { accessSync, constants, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";

/** Finds `name` on a `PATH` like `which` does ("" when absent). Relative entries resolve against `cwd`. */
export function which(name: string, pathEnv: string, cwd: string): string {
  for (const dir of pathEnv.split(":")) {
    if (!dir) continue;
    const candidate = isAbsolute(dir) ? join(dir, name) : resolve(cwd, dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return "";
}
