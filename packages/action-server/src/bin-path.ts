import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Absolute path of the bundled server (`dist/bin.cjs`), one self-contained file to run with
 * `node <path> <port> --working-dir <dir>` on the host or copy into a sandbox image.
 *
 * @example
 * ```ts
 * spawn(process.execPath, [actionServerBinPath(), "0", "--working-dir", dir, "--host", "127.0.0.1"]);
 * ```
 */
export function actionServerBinPath(): string {
  // This module lives in dist/ once built and in src/ under vitest; both sit next to dist/.
  return resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.cjs");
}
