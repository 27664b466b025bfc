import { createReadStream, lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { basename, extname, join } from "node:path";
import type { Writable } from "node:stream";
import { createDeflateRaw, type DeflateRaw } from "node:zlib";
import { type AsyncFlateStreamHandler, Zip, type ZipInputFile } from "fflate";
import { Crc32 } from "./crc32.js";

/** Zip files without zip64 cannot hold files of 4 GiB or more. */
export const MAX_ZIP_FILE_BYTES = 0xffffffff;

/** Extensions stored without compression even when a deflate level is set (already compressed). */
const COMPRESSED = new Set(
  ".zip .gz .tgz .bz2 .xz .zst .7z .rar .jar .whl .png .jpg .jpeg .gif .webp .mp3 .mp4 .webm .ogg .pdf .woff .woff2".split(
    " ",
  ),
);

/** One entry to put in a download zip. */
export interface ZipSource {
  /** Name inside the zip (`/`-separated; directories end in `/`). */
  name: string;
  /** Absolute path on disk. */
  path: string;
  kind: "file" | "directory" | "symlink";
  mode: number;
  size: number;
  mtime: Date;
}

/** A path that cannot be zipped (e.g. a file over 4 GiB); the message says which. */
export class ZipLimitError extends Error {
  override readonly name = "ZipLimitError";
}

/**
 * Lists what a download of `root` contains: for a directory every entry below it (relative names, empty
 * directories included, symlinks kept as links and never followed); for a file, that file under its own name.
 */
export function collectZipSources(root: string): ZipSource[] {
  const st = lstatSync(root);
  const sources: ZipSource[] = [];
  const add = (path: string, name: string, s: Stats) => {
    const kind = s.isSymbolicLink()
      ? "symlink"
      : s.isDirectory()
        ? "directory"
        : s.isFile()
          ? "file"
          : undefined;
    if (!kind) return; // sockets, FIFOs, devices
    if (kind === "file" && s.size > MAX_ZIP_FILE_BYTES) {
      throw new ZipLimitError(`${path} is ${s.size} bytes; zip downloads hold files up to 4 GiB (no zip64)`);
    }
    sources.push({
      name: kind === "directory" ? `${name}/` : name,
      path,
      kind,
      mode: s.mode,
      size: s.size,
      mtime: s.mtime,
    });
  };
  if (!st.isDirectory()) {
    add(root, basename(root), st);
    return sources;
  }
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      let s: Stats;
      try {
        s = lstatSync(path);
      } catch {
        continue; // vanished
      }
      add(path, prefix + name, s);
      if (s.isDirectory()) walk(path, `${prefix}${name}/`);
    }
  };
  walk(root, "");
  return sources;
}

/**
 * One streamed zip entry fed through fflate's public `ZipInputFile` interface: the checksum is our
 * slicing-by-8 CRC (about 3x faster than fflate's) and compression is Node's native zlib.
 */
class StreamedEntry implements ZipInputFile {
  readonly filename: string;
  size = 0;
  crc = 0;
  readonly compression: number;
  readonly os = 3;
  readonly attrs: number;
  readonly mtime: Date;
  ondata?: AsyncFlateStreamHandler;
  readonly #crc = new Crc32();
  readonly #deflate: DeflateRaw | undefined;
  #ended: Promise<void> | undefined;

  constructor(src: ZipSource, level: number) {
    this.filename = src.name;
    this.attrs = (src.mode & 0xffff) * 0x10000 + (src.kind === "directory" ? 0x10 : 0);
    this.mtime = src.mtime;
    const deflate = level > 0 && src.kind === "file" && !COMPRESSED.has(extname(src.name).toLowerCase());
    this.compression = deflate ? 8 : 0;
    if (deflate) {
      const z = createDeflateRaw({ level });
      z.on("data", (out: Buffer) => this.ondata?.(null, bytes(out), false));
      this.#ended = new Promise((res, rej) => {
        z.once("end", res);
        z.once("error", rej);
      });
      this.#deflate = z;
    }
  }

  /** Adds uncompressed bytes. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#crc.update(chunk);
    this.size += chunk.length;
    if (this.#deflate) this.#deflate.write(chunk);
    else this.ondata?.(null, bytes(chunk), false);
  }

  /** Flushes the compressor and closes the entry (sizes and CRC go into its data descriptor). */
  async finish(): Promise<void> {
    if (this.#deflate) {
      this.#deflate.end();
      await this.#ended;
    }
    this.crc = this.#crc.digest();
    this.ondata?.(null, new Uint8Array(0), true);
  }
}

/**
 * Streams a zip of `sources` into `out`, respecting backpressure. `level` 0 stores entries; otherwise
 * entries are deflated at that level, except already-compressed types. Unix modes and symlinks are kept.
 */
export async function writeZip(sources: ZipSource[], out: Writable, level: number): Promise<void> {
  let failure: Error | undefined;
  const zip = new Zip((err, chunk) => {
    if (err) failure = err;
    else if (chunk.length > 0) out.write(chunk);
  });
  for (const src of sources) {
    const entry = new StreamedEntry(src, level);
    zip.add(entry);
    if (src.kind === "symlink") entry.push(Buffer.from(readlinkSync(src.path)));
    else if (src.kind === "file") {
      for await (const chunk of createReadStream(src.path, { highWaterMark: 1 << 20 })) {
        entry.push(chunk as Buffer);
        if (failure) throw failure;
        if (out.writableNeedDrain) await drained(out);
      }
    }
    await entry.finish();
    if (failure) throw failure;
    if (out.writableNeedDrain) await drained(out);
  }
  zip.end();
  if (failure) throw failure;
}

/** Resolves on `drain`; rejects when the destination closes first (client went away). */
function drained(out: Writable): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const done = (err?: Error) => {
      out.off("drain", onDrain);
      out.off("close", onClose);
      out.off("error", done);
      if (err) reject(err);
      else resolvePromise();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("the client closed the connection"));
    out.on("drain", onDrain);
    out.on("close", onClose);
    out.on("error", done);
  });
}

/** fflate's handler types want a plain ArrayBuffer-backed view; Node's buffers are compatible at runtime. */
function bytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b as Uint8Array<ArrayBuffer>;
}
