import { isUtf8 } from "node:buffer";
import { constants, type Stats } from "node:fs";
import { lstat, open, readdir, readlink } from "node:fs/promises";
import { extname } from "node:path";
import { Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createDeflateRaw, deflateRaw } from "node:zlib";
import { Crc32 } from "./crc32.js";
import { ZipLimitError } from "./zip-reader.js";

export { ZipLimitError } from "./zip-reader.js";

const deflateRawAsync = promisify(deflateRaw);

/** Zip entries without zip64 sizes cannot hold files of 4 GiB or more. */
export const MAX_ZIP_FILE_BYTES = 0xffffffff;

/** Extensions stored without compression even when a deflate level is set (already compressed). */
const COMPRESSED = new Set(
  ".zip .gz .tgz .bz2 .xz .zst .7z .rar .jar .whl .png .jpg .jpeg .gif .webp .mp3 .mp4 .webm .ogg .pdf .woff .woff2".split(
    " ",
  ),
);

/** One entry to put in a download zip. */
export interface ZipSource {
  /** Name inside the zip as bytes (`/`-separated; directories end in `/`): file names are kept byte for byte. */
  name: Buffer;
  /** Path on disk, as bytes (names that are not valid UTF-8 cannot be held in a JS string). */
  path: Buffer;
  kind: "file" | "directory" | "symlink";
  mode: number;
  size: number;
  mtime: Date;
}

const SLASH = Buffer.from("/");

/**
 * Lists what a download of `root` contains: for a directory every entry below it (relative names, empty
 * directories included, symlinks kept as links and never followed); for a file, that file under its own name.
 * Names are read as bytes, so files whose names are not valid UTF-8 are kept. Sockets, FIFOs and devices have
 * no content to zip and are left out.
 */
export async function collectZipSources(root: string): Promise<ZipSource[]> {
  const rootPath = Buffer.from(root);
  const st = await lstat(rootPath);
  const sources: ZipSource[] = [];
  const add = (path: Buffer, name: Buffer, s: Stats) => {
    const kind = s.isSymbolicLink()
      ? "symlink"
      : s.isDirectory()
        ? "directory"
        : s.isFile()
          ? "file"
          : undefined;
    if (!kind) return;
    if (kind === "file" && s.size > MAX_ZIP_FILE_BYTES) {
      throw new ZipLimitError(
        `${path.toString()} is ${s.size} bytes; zip downloads hold files up to 4 GiB (no zip64 sizes)`,
      );
    }
    sources.push({
      name: kind === "directory" ? Buffer.concat([name, SLASH]) : name,
      path,
      kind,
      mode: s.mode,
      size: s.size,
      mtime: s.mtime,
    });
  };
  if (!st.isDirectory()) {
    const cut = rootPath.lastIndexOf(SLASH[0]!);
    add(rootPath, rootPath.subarray(cut + 1), st);
    return sources;
  }
  const walk = async (dir: Buffer, prefix: Buffer) => {
    const names = await readdir(dir, { encoding: "buffer" });
    names.sort(Buffer.compare);
    // lstat in batches: one at a time leaves the thread pool idle (70,000 files would take seconds longer).
    for (let from = 0; from < names.length; from += 64) {
      const batch = names.slice(from, from + 64).map((name) => {
        const path = Buffer.concat([dir, SLASH, name]);
        return lstat(path).then(
          (s) => ({ name, path, s }),
          () => undefined, // vanished
        );
      });
      for (const item of await Promise.all(batch)) {
        if (!item) continue;
        add(item.path, Buffer.concat([prefix, item.name]), item.s);
        if (item.s.isDirectory()) await walk(item.path, Buffer.concat([prefix, item.name, SLASH]));
      }
    }
  };
  await walk(rootPath, Buffer.alloc(0));
  return sources;
}

/** What the central directory needs to know of one written entry. */
interface Written {
  name: Buffer;
  flags: number;
  method: number;
  dosTime: number;
  dosDate: number;
  crc: number;
  compressedSize: number;
  size: number;
  externalAttrs: number;
  offset: number;
}

/**
 * Streams a zip of `sources` into `out`, respecting backpressure. `level` 0 stores entries; otherwise
 * entries are deflated at that level, except already-compressed types. Unix modes and symlinks are kept. A name
 * that is valid UTF-8 and not ASCII gets the UTF-8 flag (bit 11); any other name is stored as its raw bytes with
 * the flag off, as Info-ZIP does on Linux. Files are opened without blocking and only while still regular files;
 * sizes and checksums are those of the bytes really read (data descriptors). Throws when a file cannot be read
 * or grows past 4 GiB: the caller then breaks the stream, so the client never takes a partial zip for a whole one.
 */
export async function writeZip(sources: ZipSource[], out: Writable, level: number): Promise<void> {
  const small = new SmallFilePrefetch(sources);
  const written: Written[] = [];
  let offset = 0;
  const put = async (buf: Buffer) => {
    if (out.destroyed) throw new Error("the client closed the connection");
    offset += buf.length;
    if (!out.write(buf)) await drained(out);
  };
  for (const [index, src] of sources.entries()) {
    const deflate =
      level > 0 && src.kind === "file" && !COMPRESSED.has(extname(src.name.toString("latin1")).toLowerCase());
    const utf8 = !isAscii(src.name) && isUtf8(src.name);
    const { time, date } = dosDateTime(src.mtime);
    const entry: Written = {
      name: src.name,
      flags: 0x08 | (utf8 ? 0x800 : 0),
      method: deflate ? 8 : 0,
      dosTime: time,
      dosDate: date,
      crc: 0,
      compressedSize: 0,
      size: 0,
      externalAttrs: ((src.mode & 0xffff) * 0x10000 + (src.kind === "directory" ? 0x10 : 0)) >>> 0,
      offset,
    };
    const whole =
      src.kind === "symlink"
        ? await readlink(src.path, { encoding: "buffer" })
        : src.kind === "directory"
          ? Buffer.alloc(0)
          : await small.take(index);
    if (whole) {
      // Small entries in one write: header, data and descriptor (no stream machinery per entry).
      const crc = new Crc32();
      crc.update(whole);
      const stored = deflate ? await deflateRawAsync(whole, { level }) : whole;
      entry.crc = crc.digest();
      entry.size = whole.length;
      entry.compressedSize = stored.length;
      await put(Buffer.concat([localHeader(entry), stored, dataDescriptor(entry)]));
    } else {
      await put(localHeader(entry));
      const crc = new Crc32();
      let size = 0;
      let compressedSize = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb: TransformCallback) {
          size += chunk.length;
          if (size > MAX_ZIP_FILE_BYTES)
            return cb(new ZipLimitError(`${src.path.toString()} grew past 4 GiB while it was zipped`));
          crc.update(chunk);
          cb(null, chunk);
        },
      });
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          compressedSize += chunk.length;
          put(chunk).then(() => cb(), cb);
        },
      });
      await streamFile(src, count, deflate ? level : 0, sink);
      entry.crc = crc.digest();
      entry.size = size;
      entry.compressedSize = compressedSize;
      await put(dataDescriptor(entry));
    }
    written.push(entry);
  }
  const cdOffset = offset;
  for (const entry of written) await put(centralHeader(entry));
  await put(endOfCentralDirectory(written.length, offset - cdOffset, cdOffset));
}

/** Files up to this size are read whole, several at once, ahead of the entry being written. */
const SMALL_FILE_BYTES = 256 * 1024;
/** How many small files are read ahead. */
const PREFETCH = 32;

/**
 * Reads small files ahead, a few at a time (each costs open, fstat, read and close on the thread pool; in
 * sequence, 70,000 small files take tens of seconds). `take(i)` gives the content of source `i`, or undefined
 * when it is not a small file or grew past {@link SMALL_FILE_BYTES} (then it is streamed).
 */
class SmallFilePrefetch {
  readonly #pending = new Map<number, Promise<Buffer | undefined>>();
  #next = 0;

  constructor(private readonly sources: ZipSource[]) {}

  take(index: number): Promise<Buffer | undefined> {
    while (this.#next < this.sources.length && this.#next <= index + PREFETCH) {
      const src = this.sources[this.#next]!;
      if (src.kind === "file" && src.size <= SMALL_FILE_BYTES) {
        const p = readSmallFile(src.path, src.size);
        p.catch(() => {}); // awaited by take(); this keeps an early failure from being "unhandled"
        this.#pending.set(this.#next, p);
      }
      this.#next++;
    }
    const p = this.#pending.get(index);
    this.#pending.delete(index);
    return p ?? Promise.resolve(undefined);
  }
}

/**
 * Opens without blocking, checks it is still a regular file, reads at most SMALL_FILE_BYTES + 1 bytes
 * (`sizeHint` from lstat only sizes the first buffer; the bytes are counted).
 */
async function readSmallFile(path: Buffer, sizeHint: number): Promise<Buffer | undefined> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    if (!(await handle.stat()).isFile())
      throw new Error(`${path.toString()} was replaced by something that is not a regular file`);
    let buf = Buffer.allocUnsafe(Math.min(SMALL_FILE_BYTES + 1, sizeHint + 4096));
    let total = 0;
    for (;;) {
      if (total === buf.length) {
        const bigger = Buffer.allocUnsafe(SMALL_FILE_BYTES + 1);
        buf.copy(bigger, 0, 0, total);
        buf = bigger;
      }
      const { bytesRead } = await handle.read(buf, total, buf.length - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > SMALL_FILE_BYTES) return undefined;
    }
    return buf.subarray(0, total);
  } finally {
    await handle.close();
  }
}

/** Streams a (large) regular file through `count` (and deflate when `level` > 0) into `sink`. */
async function streamFile(src: ZipSource, count: Transform, level: number, sink: Writable): Promise<void> {
  const handle = await open(src.path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    if (!(await handle.stat()).isFile())
      throw new Error(`${src.path.toString()} was replaced by something that is not a regular file`);
    const source = handle.createReadStream({ highWaterMark: 1 << 20, autoClose: false });
    if (level > 0) await pipeline(source, count, createDeflateRaw({ level }), sink);
    else await pipeline(source, count, sink);
  } finally {
    await handle.close();
  }
}

function dataDescriptor(e: Written): Buffer {
  const d = Buffer.alloc(16);
  d.writeUInt32LE(0x08074b50, 0);
  d.writeUInt32LE(e.crc, 4);
  d.writeUInt32LE(e.compressedSize, 8);
  d.writeUInt32LE(e.size, 12);
  return d;
}

function localHeader(e: Written): Buffer {
  const h = Buffer.alloc(30 + e.name.length);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(20, 4);
  h.writeUInt16LE(e.flags, 6);
  h.writeUInt16LE(e.method, 8);
  h.writeUInt16LE(e.dosTime, 10);
  h.writeUInt16LE(e.dosDate, 12);
  // crc and sizes (14..25) are 0: they follow in the data descriptor (flag bit 3).
  h.writeUInt16LE(e.name.length, 26);
  h.writeUInt16LE(0, 28);
  e.name.copy(h, 30);
  return h;
}

function centralHeader(e: Written): Buffer {
  const zip64Offset = e.offset >= 0xffffffff;
  const extra = zip64Offset ? Buffer.alloc(12) : Buffer.alloc(0);
  if (zip64Offset) {
    extra.writeUInt16LE(0x0001, 0);
    extra.writeUInt16LE(8, 2);
    extra.writeBigUInt64LE(BigInt(e.offset), 4);
  }
  const h = Buffer.alloc(46 + e.name.length + extra.length);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE((3 << 8) | (zip64Offset ? 45 : 20), 4); // made by Unix
  h.writeUInt16LE(zip64Offset ? 45 : 20, 6);
  h.writeUInt16LE(e.flags, 8);
  h.writeUInt16LE(e.method, 10);
  h.writeUInt16LE(e.dosTime, 12);
  h.writeUInt16LE(e.dosDate, 14);
  h.writeUInt32LE(e.crc, 16);
  h.writeUInt32LE(e.compressedSize, 20);
  h.writeUInt32LE(e.size, 24);
  h.writeUInt16LE(e.name.length, 28);
  h.writeUInt16LE(extra.length, 30);
  // comment length, disk number, internal attributes: 0
  h.writeUInt32LE(e.externalAttrs, 38);
  h.writeUInt32LE(zip64Offset ? 0xffffffff : e.offset, 42);
  e.name.copy(h, 46);
  extra.copy(h, 46 + e.name.length);
  return h;
}

/** The end record; with a zip64 end record and locator in front when counts or offsets overflow 16/32 bits. */
function endOfCentralDirectory(count: number, cdSize: number, cdOffset: number): Buffer {
  const zip64 = count > 0xfffe || cdSize >= 0xffffffff || cdOffset >= 0xffffffff;
  const parts: Buffer[] = [];
  if (zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeUInt16LE((3 << 8) | 45, 12);
    record.writeUInt16LE(45, 14);
    record.writeBigUInt64LE(BigInt(count), 24);
    record.writeBigUInt64LE(BigInt(count), 32);
    record.writeBigUInt64LE(BigInt(cdSize), 40);
    record.writeBigUInt64LE(BigInt(cdOffset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
    locator.writeUInt32LE(1, 16);
    parts.push(record, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(zip64 ? 0xffff : count, 8);
  end.writeUInt16LE(zip64 ? 0xffff : count, 10);
  end.writeUInt32LE(zip64 ? 0xffffffff : cdSize, 12);
  end.writeUInt32LE(zip64 ? 0xffffffff : cdOffset, 16);
  parts.push(end);
  return Buffer.concat(parts);
}

/** MS-DOS date and time (local time, 2-second resolution), clamped to the years DOS dates can hold (1980-2107). */
function dosDateTime(d: Date): { time: number; date: number } {
  const year = d.getFullYear();
  if (Number.isNaN(year) || year < 1980) return { time: 0, date: (1 << 5) | 1 };
  if (year > 2107) return { time: (23 << 11) | (59 << 5) | 29, date: (127 << 9) | (12 << 5) | 31 };
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

function isAscii(b: Buffer): boolean {
  for (const byte of b) if (byte > 0x7f) return false;
  return true;
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
