import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createInflateRaw, inflateRawSync } from "node:zlib";
import { Crc32 } from "./crc32.js";
import { readZipEntries, type ZipEntry, ZipFormatError } from "./zip-reader.js";

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

interface Planned {
  entry: ZipEntry;
  target: string;
  relativePath: string;
  linkTarget?: string;
}

/**
 * Extracts the zip at `zipPath` into `destination`. Every entry is checked first and nothing is written unless
 * all pass: no absolute names, no `..` escaping, no symlink pointing outside `destination`, no entry written
 * through a symlink (from the zip or already on disk), no encryption, only stored and deflated data.
 * Unix modes and symlinks are restored. Throws {@link UnsafeZipError} or {@link ZipFormatError}.
 */
export async function extractZip(zipPath: string, destination: string): Promise<ExtractSummary> {
  const entries = readZipEntries(zipPath);
  const plan = planEntries(zipPath, entries, destination);
  const summary: ExtractSummary = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  mkdirSync(destination, { recursive: true });
  for (const p of plan) {
    const { entry, target } = p;
    if (entry.kind === "directory") {
      mkdirSync(target, { recursive: true, ...(entry.mode ? { mode: entry.mode } : {}) });
      summary.directories++;
      continue;
    }
    mkdirSync(dirname(target), { recursive: true });
    if (existsOrLink(target)) rmSync(target, { recursive: true, force: true });
    if (entry.kind === "symlink") {
      symlinkSync(p.linkTarget!, target);
      summary.symlinks++;
      continue;
    }
    await writeEntry(zipPath, entry, target);
    summary.files++;
    summary.bytes += entry.size;
  }
  return summary;
}

function planEntries(zipPath: string, entries: ZipEntry[], destination: string): Planned[] {
  const dest = resolve(destination);
  const realDest = realExistingPrefix(dest);
  const links = new Set<string>();
  const plan: Planned[] = [];
  for (const entry of entries) {
    const shown = JSON.stringify(entry.name);
    if (entry.encrypted)
      throw new UnsafeZipError(`entry ${shown} is encrypted; encrypted zips are not supported`);
    if (entry.kind === "file" && entry.method !== 0 && entry.method !== 8) {
      throw new UnsafeZipError(
        `entry ${shown} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`,
      );
    }
    const name = entry.name.replaceAll("\\", "/");
    if (name.includes("\0") || name.replace(/\/+$/, "") === "")
      throw new UnsafeZipError(`entry ${shown} has an invalid name`);
    if (name.startsWith("/") || /^[A-Za-z]:/.test(name))
      throw new UnsafeZipError(`entry ${shown} has an absolute path`);
    const target = resolve(dest, name);
    const rel = relative(dest, target);
    if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
      throw new UnsafeZipError(`entry ${shown} would be written outside the destination`);
    }
    const parts = rel.split(sep);
    for (let i = 1; i < parts.length; i++) {
      if (links.has(parts.slice(0, i).join(sep))) {
        throw new UnsafeZipError(
          `entry ${shown} would be written through the symlink ${parts.slice(0, i).join("/")} of the same zip`,
        );
      }
    }
    // An existing symlink on disk must not carry the entry outside either.
    const realParent = realExistingPrefix(dirname(target));
    if (!inside(realDest, realParent)) {
      throw new UnsafeZipError(
        `entry ${shown} would be written through an existing symlink that leaves the destination`,
      );
    }
    const planned: Planned = { entry, target, relativePath: rel };
    if (entry.kind === "symlink") {
      if (entry.size > 4096) throw new UnsafeZipError(`symlink ${shown} has an implausibly long target`);
      const linkTarget = readSmallEntry(zipPath, entry);
      if (isAbsolute(linkTarget))
        throw new UnsafeZipError(`symlink ${shown} points to an absolute path (${linkTarget})`);
      if (!inside(dest, resolve(dirname(target), linkTarget))) {
        throw new UnsafeZipError(`symlink ${shown} points outside the destination (${linkTarget})`);
      }
      planned.linkTarget = linkTarget;
      links.add(rel);
    }
    plan.push(planned);
  }
  return plan;
}

/** Reads a small entry (a symlink's target) into memory. */
function readSmallEntry(zipPath: string, entry: ZipEntry): string {
  const raw = Buffer.alloc(entry.compressedSize);
  const fd = openSync(zipPath, "r");
  try {
    readSync(fd, raw, 0, raw.length, entry.dataOffset);
  } finally {
    closeSync(fd);
  }
  try {
    return (entry.method === 0 ? raw : inflateRawSync(raw)).toString("utf8");
  } catch {
    throw new ZipFormatError(`symlink ${JSON.stringify(entry.name)} is corrupt`);
  }
}

async function writeEntry(zipPath: string, entry: ZipEntry, target: string): Promise<void> {
  const crc = new Crc32();
  let written = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      written += chunk.length;
      if (written > entry.size)
        return cb(new ZipFormatError(`entry ${JSON.stringify(entry.name)} is larger than declared`));
      crc.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (written !== entry.size)
        return cb(new ZipFormatError(`entry ${JSON.stringify(entry.name)} is truncated`));
      if (crc.digest() !== entry.crc32)
        return cb(new ZipFormatError(`entry ${JSON.stringify(entry.name)} fails its CRC check`));
      cb();
    },
  });
  const out = createWriteStream(target, entry.mode ? { mode: entry.mode } : {});
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
    rmSync(target, { force: true });
    if (err instanceof ZipFormatError) throw err;
    if ((err as { code?: string }).code?.startsWith("Z_"))
      throw new ZipFormatError(`entry ${JSON.stringify(entry.name)} is corrupt`);
    throw err;
  }
}

function existsOrLink(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return existsSync(path);
  }
}

/** The real path of the longest existing prefix of `path`, with the rest appended. */
function realExistingPrefix(path: string): string {
  let current = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(current), ...rest.reverse());
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
