import { closeSync, createReadStream, createWriteStream, openSync, readSync, realpathSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readdir, rename, rm, stat, symlink } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createInflateRaw, inflateRawSync } from "node:zlib";
import { Crc32 } from "./crc32.js";
import { readZipEntries, type ZipEntry, ZipFormatError, ZipLimitError } from "./zip-reader.js";

/** A zip rejected before anything was written (zip-slip, absolute paths, links out, unsupported entries). */
export class UnsafeZipError extends Error {
  override readonly name = "UnsafeZipError";
}

/** What {@link extractZip} wrote. */
export interface ExtractSummary {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

/** Limits of one extraction (see the server options of the same names). */
export interface ExtractLimits {
  /** Total bytes the entries may inflate to. */
  maxUnzippedBytes: number;
  /** Entries the zip may have. */
  maxEntries: number;
  /** Inflated bytes per byte of zip file, checked once {@link RATIO_GRACE_BYTES} have been inflated. */
  maxCompressionRatio: number;
}

/** Below this many inflated bytes the compression ratio is not checked (a tiny zip of repetitive text is fine). */
export const RATIO_GRACE_BYTES = 1024 * 1024;

/**
 * Paths in this module are "byte strings": each character is one byte of the on-disk name (latin1). Zip names
 * that are not valid UTF-8 then survive unchanged, and `path`'s lexical functions still work (`/` and `.` are
 * ASCII). {@link fsPath} turns one into the Buffer the fs functions take.
 */
type BytePath = string;
const toBytePath = (utf8: string): BytePath => Buffer.from(utf8, "utf8").toString("latin1");
const fsPath = (p: BytePath): Buffer => Buffer.from(p, "latin1");
const shown = (p: BytePath): string => JSON.stringify(Buffer.from(p, "latin1").toString("utf8"));

interface Planned {
  entry: ZipEntry;
  relativePath: BytePath;
  linkTarget?: BytePath;
}

/**
 * Extracts the zip at `zipPath` into `destination`, all or nothing:
 * - every entry is checked first: no absolute names, no `..` escaping, no symlink pointing outside
 *   `destination`, no entry written through a symlink (from the zip or already on disk), no encryption, only
 *   stored and deflated data, and the declared sizes within `limits`;
 * - entries are then inflated into a private staging directory inside `destination`, counting the bytes
 *   really inflated against `limits` (a header that understates a size is caught here) and checking each CRC;
 * - only when every entry is in place is the staging directory merged into `destination` (renames).
 * Any failure removes what was written (and `destination` itself when this call created it).
 * Unix modes (without setuid, setgid and sticky bits) and symlinks are restored; names that are not UTF-8 are
 * written byte for byte. Throws {@link UnsafeZipError}, {@link ZipFormatError} or {@link ZipLimitError}.
 */
export async function extractZip(
  zipPath: string,
  destination: string,
  limits: ExtractLimits,
): Promise<ExtractSummary> {
  const zipBytes = (await stat(zipPath)).size;
  const entries = readZipEntries(zipPath, limits.maxEntries);
  const budget = new InflateBudget(limits, zipBytes);
  budget.check(
    entries.reduce((sum, e) => sum + (e.kind === "file" ? e.size : 0), 0),
    "declare",
  );
  const dest = toBytePath(resolve(destination));
  const plan = planEntries(zipPath, entries, dest);
  const createdTop = await mkdir(resolve(destination), { recursive: true });
  const summary: ExtractSummary = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const staging = toBytePath(await mkdtemp(join(resolve(destination), ".ar-unzip-")));
  let merged = false;
  try {
    for (const p of plan) {
      const { entry } = p;
      const target = join(staging, p.relativePath);
      if (entry.kind === "directory") {
        await mkdir(fsPath(target), { recursive: true });
        summary.directories++;
        continue;
      }
      await mkdir(fsPath(dirname(target)), { recursive: true });
      await rm(fsPath(target), { recursive: true, force: true });
      if (entry.kind === "symlink") {
        await symlink(fsPath(p.linkTarget!), fsPath(target));
        summary.symlinks++;
        continue;
      }
      summary.bytes += await writeEntry(zipPath, entry, target, budget);
      summary.files++;
    }
    // Directories that did not exist before get the zip's mode; existing ones keep theirs.
    const newDirs: { path: BytePath; mode: number }[] = [];
    for (const p of plan) {
      if (p.entry.kind !== "directory" || !p.entry.mode) continue;
      const path = join(dest, p.relativePath);
      if (!(await lstat(fsPath(path)).catch(() => undefined))) newDirs.push({ path, mode: p.entry.mode });
    }
    await mergeInto(staging, dest);
    merged = true;
    for (const d of newDirs.reverse()) await chmod(fsPath(d.path), d.mode).catch(() => {});
    return summary;
  } catch (err) {
    if (!merged && createdTop !== undefined) await rm(createdTop, { recursive: true, force: true });
    throw err;
  } finally {
    await rm(fsPath(staging), { recursive: true, force: true });
  }
}

/** Counts inflated bytes against the total and ratio limits. */
class InflateBudget {
  #used = 0;

  constructor(
    private readonly limits: ExtractLimits,
    private readonly zipBytes: number,
  ) {}

  /** Throws ZipLimitError when `total` bytes (declared by the headers, or inflated so far) break a limit. */
  check(total: number, how: "declare" | "inflate"): void {
    const amount = how === "declare" ? `declare ${total} bytes` : `inflate to more than ${total - 1} bytes`;
    if (total > this.limits.maxUnzippedBytes) {
      throw new ZipLimitError(
        `its entries ${amount}, more than maxUnzippedBytes (${this.limits.maxUnzippedBytes} bytes; env ACTION_SERVER_MAX_UNZIPPED_BYTES on the server raises it)`,
      );
    }
    const ratio = total / Math.max(1, this.zipBytes);
    if (total > RATIO_GRACE_BYTES && ratio > this.limits.maxCompressionRatio) {
      throw new ZipLimitError(
        `a compression ratio of ${Math.round(ratio)}x (${total} bytes from a ${this.zipBytes}-byte zip) looks like a zip bomb: the limit is maxZipCompressionRatio (${this.limits.maxCompressionRatio}; env ACTION_SERVER_MAX_ZIP_RATIO on the server raises it)`,
      );
    }
  }

  /** Adds really inflated bytes. */
  add(bytes: number): void {
    this.#used += bytes;
    this.check(this.#used, "inflate");
  }
}

function planEntries(zipPath: string, entries: ZipEntry[], dest: BytePath): Planned[] {
  const realDest = realExistingPrefix(dest);
  const links = new Set<string>();
  const plan: Planned[] = [];
  for (const entry of entries) {
    const label = JSON.stringify(entry.name);
    if (entry.encrypted)
      throw new UnsafeZipError(`entry ${label} is encrypted; encrypted zips are not supported`);
    if (entry.kind === "file" && entry.method !== 0 && entry.method !== 8) {
      throw new UnsafeZipError(
        `entry ${label} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`,
      );
    }
    const name = entry.rawName.toString("latin1").replaceAll("\\", "/");
    if (name.includes("\0") || name.replace(/\/+$/, "") === "")
      throw new UnsafeZipError(`entry ${label} has an invalid name`);
    if (name.startsWith("/") || /^[A-Za-z]:/.test(name))
      throw new UnsafeZipError(`entry ${label} has an absolute path`);
    const target = resolve(dest, name);
    const rel = relative(dest, target);
    if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
      throw new UnsafeZipError(`entry ${label} would be written outside the destination`);
    }
    const parts = rel.split(sep);
    for (let i = 1; i < parts.length; i++) {
      if (links.has(parts.slice(0, i).join(sep))) {
        throw new UnsafeZipError(
          `entry ${label} would be written through the symlink ${shown(parts.slice(0, i).join("/"))} of the same zip`,
        );
      }
    }
    // An existing symlink on disk must not carry the entry outside either.
    const realParent = realExistingPrefix(dirname(target));
    if (!inside(realDest, realParent)) {
      throw new UnsafeZipError(
        `entry ${label} would be written through an existing symlink that leaves the destination`,
      );
    }
    const planned: Planned = { entry, relativePath: rel };
    if (entry.kind === "symlink") {
      if (entry.size > 4096) throw new UnsafeZipError(`symlink ${label} has an implausibly long target`);
      const linkTarget = readSmallEntry(zipPath, entry);
      if (isAbsolute(linkTarget))
        throw new UnsafeZipError(`symlink ${label} points to an absolute path (${shown(linkTarget)})`);
      if (linkTarget.includes("\0")) throw new UnsafeZipError(`symlink ${label} has an invalid target`);
      if (!inside(dest, resolve(dirname(target), linkTarget))) {
        throw new UnsafeZipError(`symlink ${label} points outside the destination (${shown(linkTarget)})`);
      }
      planned.linkTarget = linkTarget;
      links.add(rel);
    }
    plan.push(planned);
  }
  return plan;
}

/** Reads a small entry (a symlink's target) into memory, as a byte string. */
function readSmallEntry(zipPath: string, entry: ZipEntry): BytePath {
  const raw = Buffer.alloc(entry.compressedSize);
  const fd = openSync(zipPath, "r");
  try {
    readSync(fd, raw, 0, raw.length, entry.dataOffset);
  } finally {
    closeSync(fd);
  }
  try {
    const data = entry.method === 0 ? raw : inflateRawSync(raw, { maxOutputLength: 4096 });
    return data.toString("latin1");
  } catch {
    throw new ZipFormatError(`symlink ${JSON.stringify(entry.name)} is corrupt`);
  }
}

/** Inflates one entry to `target`, checking its real size against the header and the budget; returns bytes. */
async function writeEntry(
  zipPath: string,
  entry: ZipEntry,
  target: BytePath,
  budget: InflateBudget,
): Promise<number> {
  const crc = new Crc32();
  let written = 0;
  const label = JSON.stringify(entry.name);
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      written += chunk.length;
      if (written > entry.size)
        return cb(
          new ZipFormatError(`entry ${label} is larger than its header declares (${entry.size} bytes)`),
        );
      try {
        budget.add(chunk.length);
      } catch (err) {
        return cb(err as Error);
      }
      crc.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (written !== entry.size) return cb(new ZipFormatError(`entry ${label} is truncated`));
      if (crc.digest() !== entry.crc32) return cb(new ZipFormatError(`entry ${label} fails its CRC check`));
      cb();
    },
  });
  const out = createWriteStream(fsPath(target), entry.mode ? { mode: entry.mode } : {});
  try {
    if (entry.compressedSize === 0) {
      // Streams cannot express an empty range; an empty deflate stream is still checked by flush.
      check.end();
      await pipeline(check, out);
    } else {
      const source = createReadStream(zipPath, {
        start: entry.dataOffset,
        end: entry.dataOffset + entry.compressedSize - 1,
        highWaterMark: 1 << 20,
      });
      if (entry.method === 8) await pipeline(source, createInflateRaw(), check, out);
      else await pipeline(source, check, out);
    }
  } catch (err) {
    if (err instanceof ZipFormatError || err instanceof ZipLimitError) throw err;
    if ((err as { code?: string }).code?.startsWith("Z_"))
      throw new ZipFormatError(`entry ${label} is corrupt`);
    throw err;
  }
  return written;
}

/**
 * Moves everything in `from` into `to`: a directory onto an existing directory is merged, anything else
 * replaces what is there (a link on disk is replaced, never written through).
 */
async function mergeInto(from: BytePath, to: BytePath): Promise<void> {
  for (const nameBuf of await readdir(fsPath(from), { encoding: "buffer" })) {
    const name = nameBuf.toString("latin1");
    const src = join(from, name);
    const dst = join(to, name);
    const s = await lstat(fsPath(src));
    const d = await lstat(fsPath(dst)).catch(() => undefined);
    if (s.isDirectory() && d?.isDirectory()) {
      await mergeInto(src, dst);
      continue;
    }
    if (d) await rm(fsPath(dst), { recursive: true, force: true });
    await rename(fsPath(src), fsPath(dst));
  }
}

/** The real path of the longest existing prefix of `path`, with the rest appended. */
function realExistingPrefix(path: BytePath): BytePath {
  let current = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(
        realpathSync(fsPath(current), { encoding: "buffer" }).toString("latin1"),
        ...rest.reverse(),
      );
    } catch {
      const parent = dirname(current);
      if (parent === current) return path;
      rest.push(current.slice(parent.length).replace(/^\//, ""));
      current = parent;
    }
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}
