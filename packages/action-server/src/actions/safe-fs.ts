import { constants, type Stats } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { FileErrorId } from "@agent-runtime/runtime-core";

/** `extras.error_id` values this server sets: runtime-core's {@link FileErrorId}. */
export const ServerFileErrorId = FileErrorId;

/** A file action that was refused or failed; `errorId` goes to `extras.error_id` of the ErrorObservation. */
export class FileAccessError extends Error {
  override readonly name = "FileAccessError";
  readonly errorId: string;

  constructor(message: string, errorId: string, options?: { cause?: unknown }) {
    super(message, options);
    this.errorId = errorId;
  }
}

/** Throws INVALID_PATH when `path` holds a NUL byte (no file name can; Node would throw a TypeError). */
export function assertPathText(path: string, what = "path"): void {
  if (path.includes("\0")) {
    throw new FileAccessError(
      `Invalid ${what} ${JSON.stringify(path)}: it contains a NUL byte (\\u0000), which no file name can hold. Remove the NUL byte and send the action again.`,
      ServerFileErrorId.INVALID_PATH,
    );
  }
}

/** "a FIFO", "a socket", "a character device"...: what a non-regular file is, for messages. */
export function describeKind(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSymbolicLink()) return "a symbolic link";
  return "a special file";
}

/** How {@link openRegularFile} opens: read only, read-write (existing file), or create a new file (never replaces). */
export type OpenMode = "read" | "update" | "write" | "create";

const FLAGS: Record<OpenMode, number> = {
  read: constants.O_RDONLY,
  update: constants.O_RDWR,
  write: constants.O_WRONLY,
  create: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
};

/**
 * Opens a path given by the agent without ever blocking, and only when it is a regular file. The path is
 * checked with `stat` first (a device is never opened: opening some has side effects), then opened with
 * `O_NONBLOCK | O_NOCTTY` (a FIFO swapped in meanwhile cannot block the open) and checked again with `fstat`
 * on the descriptor, so what is read is what was checked.
 *
 * Throws {@link FileAccessError}: NOT_FOUND, IS_DIRECTORY, NOT_A_REGULAR_FILE, PERMISSION or IO.
 */
export async function openRegularFile(
  path: string,
  mode: OpenMode,
  createMode = 0o666,
): Promise<{ handle: FileHandle; stat: Stats }> {
  if (mode !== "create") {
    let before: Stats;
    try {
      before = await stat(path);
    } catch (err) {
      throw toFileAccessError(err, path);
    }
    refuseNonRegular(before, path, mode);
  }
  let handle: FileHandle;
  try {
    handle = await open(path, FLAGS[mode] | constants.O_NONBLOCK | constants.O_NOCTTY, createMode);
  } catch (err) {
    // ENXIO: a socket, or a FIFO without a reader opened for writing (swapped in after the stat).
    if (codeOf(err) === "ENXIO") {
      const now = await stat(path).catch(() => undefined);
      throw notRegular(path, now ? describeKind(now) : "a special file", mode);
    }
    throw toFileAccessError(err, path);
  }
  try {
    const st = await handle.stat();
    refuseNonRegular(st, path, mode);
    return { handle, stat: st };
  } catch (err) {
    await handle.close().catch(() => {});
    throw err instanceof FileAccessError ? err : toFileAccessError(err, path);
  }
}

/** What {@link readAtMost} read. */
export interface BoundedRead {
  data: Buffer;
  /** True when the file has more than `maxBytes` bytes (then `data` is incomplete). */
  overLimit: boolean;
  /** True when `stopAfterHead` asked to stop early (then `data` is incomplete). */
  stopped: boolean;
}

/**
 * Reads from the descriptor's current position until end of file, but never more than `maxBytes + 1` bytes:
 * the size is counted while reading (`stat` says 0 for `/proc` files that are in fact endless). Memory grows
 * with what was really read, not with what `stat` claims. `stopAfterHead` sees the first `headBytes` bytes
 * (or the whole file when shorter) once, and may end the read early (e.g. a binary file).
 */
export async function readAtMost(
  handle: FileHandle,
  maxBytes: number,
  stopAfterHead?: { headBytes: number; stop: (head: Buffer) => boolean },
): Promise<BoundedRead> {
  const chunks: Buffer[] = [];
  let total = 0;
  let headChecked = stopAfterHead === undefined;
  for (;;) {
    const want = Math.min(1 << 20, maxBytes + 1 - total);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await handle.read(buf, 0, want, null);
    if (bytesRead === 0) break;
    chunks.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
    total += bytesRead;
    if (total > maxBytes) {
      return { data: Buffer.concat(chunks, total).subarray(0, maxBytes), overLimit: true, stopped: false };
    }
    if (!headChecked && stopAfterHead && total >= stopAfterHead.headBytes) {
      headChecked = true;
      if (stopAfterHead.stop(Buffer.concat(chunks, total)))
        return { data: Buffer.concat(chunks, total), overLimit: false, stopped: true };
    }
  }
  return { data: Buffer.concat(chunks, total), overLimit: false, stopped: false };
}

/** Replaces the whole content of an open regular file (truncate, then write everything from offset 0). */
export async function replaceContent(handle: FileHandle, content: string | Uint8Array): Promise<void> {
  const data = typeof content === "string" ? Buffer.from(content, "utf8") : content;
  await handle.truncate(0);
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset, offset);
    offset += bytesWritten;
  }
}

/** Maps an fs error on `path` to a {@link FileAccessError} with the matching id. */
export function toFileAccessError(err: unknown, path: string): FileAccessError {
  if (err instanceof FileAccessError) return err;
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case "ENOENT":
      return new FileAccessError(`File not found: ${path}`, ServerFileErrorId.NOT_FOUND, { cause: err });
    case "ENOTDIR":
      return new FileAccessError(
        `File not found: ${path} (a parent is not a directory)`,
        ServerFileErrorId.NOT_FOUND,
        {
          cause: err,
        },
      );
    case "EISDIR":
      return new FileAccessError(`Path is a directory: ${path}`, ServerFileErrorId.IS_DIRECTORY, {
        cause: err,
      });
    case "EACCES":
    case "EPERM":
      return new FileAccessError(`Permission error on ${path}: ${message}`, ServerFileErrorId.PERMISSION, {
        cause: err,
      });
    case "ENXIO":
      return notRegular(path, "a special file", "write");
    case "ELOOP":
    case "ENAMETOOLONG":
      return new FileAccessError(
        `Invalid path ${path}: ${message}. Check the path for symlink loops or overlong names.`,
        ServerFileErrorId.INVALID_PATH,
        { cause: err },
      );
    default:
      return new FileAccessError(`Cannot access ${path}: ${message}`, ServerFileErrorId.IO, { cause: err });
  }
}

/** The `code` of a Node system error, if any. */
export function codeOf(err: unknown): string | undefined {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

function refuseNonRegular(st: Stats, path: string, mode: OpenMode): void {
  if (st.isFile()) return;
  if (st.isDirectory())
    throw new FileAccessError(`Path is a directory: ${path}`, ServerFileErrorId.IS_DIRECTORY);
  throw notRegular(path, describeKind(st), mode);
}

function notRegular(path: string, kind: string, mode: OpenMode = "read"): FileAccessError {
  const hint =
    mode === "read"
      ? `Use a run action (e.g. \`head -c 100 ${path}\`) if you really mean to read it.`
      : `Use a run action (e.g. \`printf '...' > ${path}\`) if you really mean to write to it.`;
  return new FileAccessError(
    `${path} is ${kind}, not a regular file: file actions only read and write regular files (a device or a FIFO could block or never end). ${hint}`,
    ServerFileErrorId.NOT_A_REGULAR_FILE,
  );
}
