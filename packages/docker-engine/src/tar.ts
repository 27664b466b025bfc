/** One regular file of a tar archive. */
export interface TarEntry {
  /** Relative path, `/`-separated, at most 100 bytes (a build context needs no more). */
  name: string;
  content: Buffer | string;
  /** @default 0o644 */
  mode?: number;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/**
 * A POSIX ustar archive of regular files (what the engine's build API takes as its context). Names are
 * checked: relative, no `..`, at most 100 bytes.
 */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const name = Buffer.from(entry.name, "utf8");
    if (
      name.length === 0 ||
      name.length > 100 ||
      entry.name.startsWith("/") ||
      entry.name.split("/").includes("..")
    ) {
      throw new RangeError(
        `tar entry ${JSON.stringify(entry.name)}: names are relative, without "..", 1-100 bytes`,
      );
    }
    const body = typeof entry.content === "string" ? Buffer.from(entry.content, "utf8") : entry.content;
    const header = Buffer.alloc(512, 0);
    name.copy(header, 0);
    header.write(octal(entry.mode ?? 0o644, 8), 100, "ascii");
    header.write(octal(0, 8), 108, "ascii");
    header.write(octal(0, 8), 116, "ascii");
    header.write(octal(body.length, 12), 124, "ascii");
    header.write(octal(0, 12), 136, "ascii");
    header.write("        ", 148, "ascii"); // checksum field counts as spaces while summing
    header.write("0", 156, "ascii");
    header.write("ustar\0", 257, "ascii");
    header.write("00", 263, "ascii");
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
    parts.push(header, body);
    const pad = (512 - (body.length % 512)) % 512;
    if (pad > 0) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(1024, 0));
  return Buffer.concat(parts);
}
