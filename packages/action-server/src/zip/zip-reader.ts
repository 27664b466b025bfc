import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** One entry of a zip's central directory. */
export interface ZipEntry {
  /** The stored name decoded as UTF-8, for messages (`/`-separated; directories end in `/`). */
  name: string;
  /**
   * The stored name's bytes, as written to disk: UTF-8 when the zip says so (flag bit 11), else raw bytes
   * (a name that is not valid UTF-8, as Linux allows, round-trips byte for byte).
   */
  rawName: Buffer;
  kind: "file" | "directory" | "symlink";
  /** 0 stored, 8 deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Unix permission bits (`0o777` at most: setuid, setgid and sticky are dropped) when the zip carries them. */
  mode: number | undefined;
  /** Offset of the entry's data in the file. */
  dataOffset: number;
  encrypted: boolean;
}

/** A zip that cannot be read; the message says what is wrong. */
export class ZipFormatError extends Error {
  override readonly name = "ZipFormatError";
}

/** A zip (or a download) over one of the server's limits; the message names the limit and how to raise it. */
export class ZipLimitError extends Error {
  override readonly name = "ZipLimitError";
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/**
 * Reads the central directory of the zip file at `path` (zip64 included). A zip declaring more than
 * `maxEntries` entries throws {@link ZipLimitError} before its directory is parsed.
 */
export function readZipEntries(path: string, maxEntries = Number.POSITIVE_INFINITY): ZipEntry[] {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const read = (offset: number, length: number): Buffer => {
      const buf = Buffer.alloc(length);
      const n = readSync(fd, buf, 0, length, offset);
      if (n !== length) throw new ZipFormatError("unexpected end of file");
      return buf;
    };
    if (size < 22) throw new ZipFormatError("too short to be a zip file");
    const tailLength = Math.min(size, 22 + 65_535);
    const tail = read(size - tailLength, tailLength);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new ZipFormatError("no end-of-central-directory record (is it a zip file?)");
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locatorAt = size - tailLength + eocd - 20;
      if (locatorAt < 0) throw new ZipFormatError("zip64 locator missing");
      const locator = read(locatorAt, 20);
      if (locator.readUInt32LE(0) !== ZIP64_LOCATOR) throw new ZipFormatError("zip64 locator missing");
      const z64 = read(Number(locator.readBigUInt64LE(8)), 56);
      if (z64.readUInt32LE(0) !== ZIP64_EOCD) throw new ZipFormatError("zip64 end record missing");
      count = Number(z64.readBigUInt64LE(32));
      cdSize = Number(z64.readBigUInt64LE(40));
      cdOffset = Number(z64.readBigUInt64LE(48));
    }
    if (count > maxEntries) {
      throw new ZipLimitError(
        `it has ${count} entries, more than maxZipEntries (${maxEntries}; env ACTION_SERVER_MAX_ZIP_ENTRIES on the server raises it)`,
      );
    }
    if (cdOffset + cdSize > size) throw new ZipFormatError("central directory lies outside the file");
    const cd = read(cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let n = 0; n < count; n++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL)
        throw new ZipFormatError("corrupt central directory");
      const madeBy = cd.readUInt16LE(p + 4);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const crc32 = cd.readUInt32LE(p + 16);
      let compressedSize = cd.readUInt32LE(p + 20);
      let uncompressed = cd.readUInt32LE(p + 24);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      const external = cd.readUInt32LE(p + 38);
      let localOffset = cd.readUInt32LE(p + 42);
      const rawName = Buffer.from(cd.subarray(p + 46, p + 46 + nameLength));
      const name = rawName.toString("utf8");
      const extra = cd.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength);
      for (let e = 0; e + 4 <= extra.length; ) {
        const id = extra.readUInt16LE(e);
        const len = extra.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (uncompressed === 0xffffffff) {
            uncompressed = Number(extra.readBigUInt64LE(q));
            q += 8;
          }
          if (compressedSize === 0xffffffff) {
            compressedSize = Number(extra.readBigUInt64LE(q));
            q += 8;
          }
          if (localOffset === 0xffffffff) localOffset = Number(extra.readBigUInt64LE(q));
        }
        e += 4 + len;
      }
      p += 46 + nameLength + extraLength + commentLength;
      const unixMode = madeBy >> 8 === 3 ? external >>> 16 : 0;
      const type = unixMode & 0o170000;
      const kind =
        type === 0o120000
          ? "symlink"
          : name.endsWith("/") || type === 0o040000 || (external & 0x10) !== 0
            ? "directory"
            : "file";
      const local = read(localOffset, 30);
      if (local.readUInt32LE(0) !== LOCAL)
        throw new ZipFormatError(`corrupt local header for ${JSON.stringify(name)}`);
      const dataOffset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if (dataOffset + compressedSize > size)
        throw new ZipFormatError(`data of ${JSON.stringify(name)} lies outside the file`);
      entries.push({
        name,
        rawName,
        kind,
        method,
        compressedSize,
        size: uncompressed,
        crc32,
        mode: unixMode ? unixMode & 0o777 : undefined,
        dataOffset,
        encrypted: (flags & 1) !== 0,
      });
    }
    return entries;
  } finally {
    closeSync(fd);
  }
}
