import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
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

/**
 * Reads the one-file action-server bundle from an installed `@agent-runtime/action-server`, resolved from
 * `fromDir` (default: the current directory), for `withActionServer({ strategy: "inline", ...})`. This package
 * does not depend on the action-server; install it next to your code to use this.
 */
export function readActionServerBundle(fromDir: string = process.cwd()): ActionServerBundle {
  const require = createRequire(join(resolve(fromDir), "noop.js"));
  let manifestPath: string;
  try {
    manifestPath = require.resolve("@agent-runtime/action-server/package.json");
  } catch (cause) {
    throw new ImageBuilderError(
      "NOT_FOUND",
      `@agent-runtime/action-server is not installed where ${resolve(fromDir)} can resolve it; ` +
        "install it (npm install @agent-runtime/action-server) or use the npm strategy",
      { cause },
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
    throw new ImageBuilderError("NOT_FOUND", `The action-server bundle ${path} is missing; build or reinstall the package`, {
      cause,
    });
  }
}
