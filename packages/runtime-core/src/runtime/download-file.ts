import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import type { Writable } from "node:stream";
import { RuntimeError } from "../errors.js";

/**
 * Streams a download into the host file `destination` through `write(sink)`, which resolves with the bytes
 * written. The bytes go to a private (0600) file next to the target, renamed over it once complete: a failed
 * download never leaves a partial file. `destination` must not be a directory (INVALID_ARGUMENT with an example
 * path) and its directory must exist (NOT_FOUND).
 */
export async function downloadToFile(
  destination: string,
  write: (sink: Writable) => Promise<number>,
): Promise<{ bytes: number }> {
  const target = resolvePath(destination);
  const existing = await stat(target).catch(() => undefined);
  if (existing?.isDirectory())
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `destination: ${target} is a directory; pass the path of the zip file to write, e.g. ${join(target, "download.zip")}`,
    );
  const partial = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString("hex")}.partial`);
  let handle: FileHandle;
  try {
    handle = await open(partial, "wx", 0o600);
  } catch (cause) {
    throw new RuntimeError(
      (cause as NodeJS.ErrnoException).code === "ENOENT" ? "NOT_FOUND" : "INVALID_ARGUMENT",
      `destination: cannot create a file in ${dirname(target)} on the host (${(cause as Error).message})`,
      { cause },
    );
  }
  try {
    const bytes = await write(handle.createWriteStream({ highWaterMark: 1 << 20 }));
    await rename(partial, target);
    return { bytes };
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  } finally {
    await handle.close().catch(() => undefined);
  }
}
