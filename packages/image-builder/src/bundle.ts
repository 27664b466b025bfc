import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ImageBuilderError } from "./errors.js";

/** The action-server bundle read from an installed `@agent-runtime/action-server` package. */
export interface ActionServerBundle {
  /** The package's version. */
  version: string;
  /** The bundle's JavaScript text (its `agent-runtime-action-server` bin). */
  bundle: string;
  /** Where it was read from. */
  path: string;
}

function findManifest(fromDir: string): string | undefined {
  // Only the node_modules folders from `fromDir` up, as Node looks them up; NODE_PATH and global folders are
  // left out so the answer does not depend on how the process was started.
  for (let dir = resolve(fromDir); ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", "@agent-runtime", "action-server", "package.json");
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Reads the one-file action-server bundle from an installed `@agent-runtime/action-server`, found in the
 * `node_modules` folders from `fromDir` (default: the current directory) up, for
 * `withActionServer({ strategy: "inline", ...})`. This package does not depend on the action-server; install
 * it next to your code to use this.
 */
export function readActionServerBundle(fromDir: string = process.cwd()): ActionServerBundle {
  const manifestPath = findManifest(fromDir);
  if (manifestPath === undefined) {
    throw new ImageBuilderError(
      "NOT_FOUND",
      `@agent-runtime/action-server is not installed in a node_modules folder at or above ${resolve(fromDir)}; ` +
        "install it (npm install @agent-runtime/action-server) or use the npm strategy",
    );
  }
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as {
    version?: string;
    bin?: string | Record<string, string>;
  };
  const bin = typeof manifest.bin === "string" ? manifest.bin : manifest.bin?.["agent-runtime-action-server"];
  if (bin === undefined || manifest.version === undefined) {
    throw new ImageBuilderError(
      "NOT_FOUND",
      `${manifestPath} has no version or no agent-runtime-action-server bin; is it the right package?`,
    );
  }
  const path = join(dirname(manifestPath), bin);
  try {
    return { version: manifest.version, bundle: readFileSync(path, "utf8"), path };
  } catch (cause) {
    throw new ImageBuilderError(
      "NOT_FOUND",
      `The action-server bundle ${path} is missing; build or reinstall the package`,
      {
        cause,
      },
    );
  }
}
