import { MAX_CMD_OUTPUT_CHARS, OUTPUT_TRUNCATION_MARKER, truncateOutput } from "@agent-runtime/runtime-core";

/** Bytes kept from the start and from the end of one observation's output (memory stays bounded). */
export const OUTPUT_KEEP_BYTES = 4 * 1024 * 1024;

/**
 * Collects a command's output keeping at most `keepBytes` from the start and `keepBytes` from the end, so a
 * command printing 100 MB costs 2 x `keepBytes` of memory. Bytes in between are counted, not stored.
 */
export class OutputBuffer {
  readonly #keepBytes: number;
  #head: Buffer[] = [];
  #headBytes = 0;
  #tail: Buffer[] = [];
  #tailBytes = 0;
  #total = 0;
  #lastByte = -1;

  constructor(keepBytes = OUTPUT_KEEP_BYTES) {
    this.#keepBytes = keepBytes;
  }

  /** Total bytes appended (including dropped ones). */
  get totalBytes(): number {
    return this.#total;
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#total += chunk.length;
    this.#lastByte = chunk[chunk.length - 1]!;
    let rest = chunk;
    if (this.#headBytes < this.#keepBytes) {
      const take = Math.min(rest.length, this.#keepBytes - this.#headBytes);
      this.#head.push(rest.subarray(0, take));
      this.#headBytes += take;
      rest = rest.subarray(take);
      if (rest.length === 0) return;
    }
    this.#tail.push(rest);
    this.#tailBytes += rest.length;
    // Drop whole chunks from the front while what remains still covers keepBytes.
    while (this.#tail.length > 1 && this.#tailBytes - this.#tail[0]!.length >= this.#keepBytes) {
      this.#tailBytes -= this.#tail.shift()!.length;
    }
  }

  /** True when the last byte appended was a newline. */
  get endsWithNewline(): boolean {
    return this.#lastByte === 0x0a;
  }

  /** True when bytes between head and tail were dropped. */
  get dropped(): boolean {
    return this.#total > this.#headBytes + this.#tailBytes;
  }

  /**
   * The output as text. Unless `untruncated`, text over 30,000 characters keeps the first and last 15,000
   * around the documented marker. With `untruncated` (hidden commands) everything kept is returned, with a
   * note where bytes were dropped. Trailing whitespace is stripped before truncating (as OpenHands does).
   */
  text(untruncated = false): string {
    const head = Buffer.concat(this.#head, this.#headBytes);
    let tail = Buffer.concat(this.#tail, this.#tailBytes);
    if (!this.dropped) {
      const all = Buffer.concat([head, tail]).toString("utf8").trimEnd();
      return untruncated ? all : truncateOutput(all);
    }
    if (tail.length > this.#keepBytes) tail = tail.subarray(tail.length - this.#keepBytes);
    const headText = head.toString("utf8");
    const tailText = tail.subarray(utf8Start(tail)).toString("utf8").trimEnd();
    if (untruncated) {
      const omitted = this.#total - head.length - tail.length;
      return `${headText}\n[... ${omitted} bytes of output omitted ...]\n${tailText}`;
    }
    const half = Math.floor(MAX_CMD_OUTPUT_CHARS / 2);
    return (
      headText.slice(0, half) + OUTPUT_TRUNCATION_MARKER + tailText.slice(Math.max(0, tailText.length - half))
    );
  }

  /** Forgets everything (the next observation starts empty). */
  clear(): void {
    this.#head = [];
    this.#headBytes = 0;
    this.#tail = [];
    this.#tailBytes = 0;
    this.#total = 0;
    this.#lastByte = -1;
  }
}

/** Index of the first byte in `buf` that starts a UTF-8 character (skips continuation bytes, at most 3). */
function utf8Start(buf: Buffer): number {
  let i = 0;
  while (i < 3 && i < buf.length && (buf[i]! & 0xc0) === 0x80) i++;
  return i;
}
