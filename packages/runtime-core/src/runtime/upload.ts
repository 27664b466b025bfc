import { readdir, readFile, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { RuntimeError } from "../errors.js";
import { createZip, type ZipEntry } from "../util/zip.js";

/** What `POST /upload_file` sends for one host path. */
export interface UploadPayload {
  /** The file's bytes, or a zip of the directory. */
  content: Buffer;
  /** The name the server writes (`<dir>.zip` for a directory). */
  filename: string;
  /** True for a directory: the server extracts the zip at the destination. */
  recursive: boolean;
}

/**
 * Reads `localPath` from the host for an upload: a file as it is, a directory as a zip whose entries start with
 * the directory's own name (so it lands as `<sandboxDir>/<name>/...`), with file modes kept. Only regular files
 * and directories are taken; symlinks and special files are skipped. Throws NOT_FOUND naming `localPath` when it
 * does not exist.
 */
export async function readUploadPayload(localPath: string): Promise<UploadPayload> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(localPath);
  } catch (cause) {
    throw new RuntimeError("NOT_FOUND", `localPath: ${localPath} does not exist on the host`, { cause });
  }
  if (!info.isDirectory())
    return { content: await readFile(localPath), filename: basename(localPath), recursive: false };
  const entries: ZipEntry[] = [];
  const root = localPath.replace(/\/+$/, "");
  const parent = join(root, "..");
  const walk = async (dir: string) => {
    const items = await readdir(dir, { withFileTypes: true });
    entries.push({ path: `${relative(parent, dir)}/`, data: new Uint8Array() });
    for (const item of items) {
      const full = join(dir, item.name);
      if (item.isDirectory()) await walk(full);
      else if (item.isFile())
        entries.push({
          path: relative(parent, full),
          data: await readFile(full),
          mode: (await stat(full)).mode,
        });
    }
  };
  await walk(root);
  return { content: createZip(entries), filename: `${basename(root)}.zip`, recursive: true };
}

/** Checks the sandbox side of an upload: an absolute path (INVALID_ARGUMENT otherwise). */
export function assertSandboxDir(sandboxDir: string): void {
  if (!sandboxDir.startsWith("/")) {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `sandboxDir: must be an absolute path inside the sandbox, got ${JSON.stringify(sandboxDir)}`,
    );
  }
}
