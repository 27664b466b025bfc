import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { UserWorkspaceConfig } from "vitest/config";

const root = import.meta.dirname;

interface ExportTarget {
  import?: { default?: string } | string;
}

/**
 * Tests read source, not stale `dist`: every `@agent-runtime/*` import (and sub-path export) is aliased to
 * the matching `src/<entry>.ts` file, derived from the package's `exports` map (`dist/x.js` -> `src/x.ts`).
 */
function workspaceAliases(): { find: RegExp; replacement: string }[] {
  const aliases: { find: RegExp; replacement: string }[] = [];
  for (const group of ["packages", "apps"]) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const pkgPath = join(dir, name, "package.json");
      if (!existsSync(pkgPath)) continue;
      const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as {
        name: string;
        exports?: Record<string, ExportTarget | string>;
      };
      for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
        if (typeof target === "string") continue;
        const imp = target.import;
        const file = typeof imp === "string" ? imp : imp?.default;
        if (!file?.startsWith("./dist/") || !file.endsWith(".js")) continue;
        const src = join(dir, name, "src", file.slice("./dist/".length).replace(/\.js$/, ".ts"));
        if (!existsSync(src)) continue;
        const spec = subpath === "." ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
        aliases.push({ find: new RegExp(`^${spec.replace(/[/.-]/g, "\\$&")}$`), replacement: src });
      }
    }
  }
  return aliases;
}

/** The vitest project config every package uses (see each package's `vitest.config.ts`). */
export function sharedProject(
  packageDir: string,
  overrides: UserWorkspaceConfig["test"] = {},
): UserWorkspaceConfig {
  return {
    resolve: { alias: workspaceAliases() },
    test: {
      root: resolve(packageDir),
      include: ["src/**/*.test.ts", "test/**/*.test.ts"],
      environment: "node",
      testTimeout: 20_000,
      hookTimeout: 30_000,
      ...overrides,
    },
  };
}
