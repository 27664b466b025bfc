/** One chunk of output with the absolute offset of its first byte. */
interface Chunk {
  offset: number;
  data: Buffer;
}

/** A slice of output read from an {@link OutputBuffer}. */
export interface OutputSlice {
  /** Absolute offset of `data[0]` (greater than the requested offset when older output was dropped). */
  offset: number;
  data: Buffer;
}

/**
 * Everything a process wrote to one stream, addressed by absolute byte offset, so readers can open late
 * (after the process exited) and re-open at their offset. With a `maxBytes` cap the oldest chunks are dropped.
 */
export class OutputBuffer {
  readonly #maxBytes: number;
  readonly #chunks: Chunk[] = [];
  #start = 0;
  #end = 0;
  #closed = false;
  #waiters = new Set<() => void>();

  constructor(maxBytes = Number.POSITIVE_INFINITY) {
    this.#maxBytes = maxBytes;
  }

  /** Total bytes ever written. */
  get length(): number {
    return this.#end;
  }

  /** True once the writer is done (EOF). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Appends data (ignored after close). */
  write(data: Buffer): void {
    if (this.#closed || data.length === 0) return;
    this.#chunks.push({ offset: this.#end, data });
    this.#end += data.length;
    while (this.#end - this.#start > this.#maxBytes && this.#chunks.length > 1) {
      const dropped = this.#chunks.shift()!;
      this.#start = dropped.offset + dropped.data.length;
    }
    this.#wake();
  }

  /** Marks EOF; readers drain what is left and finish. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake();
  }

  /** What is buffered from `offset` on, at most `maxBytes` of it (empty when nothing new). */
  readNow(offset: number, maxBytes = 1024 * 1024): OutputSlice {
    const from = Math.max(offset, this.#start);
    const parts: Buffer[] = [];
    let size = 0;
    for (const chunk of this.#chunks) {
      const chunkEnd = chunk.offset + chunk.data.length;
      if (chunkEnd <= from) continue;
      const begin = Math.max(0, from - chunk.offset);
      const part = chunk.data.subarray(begin, begin + (maxBytes - size));
      parts.push(part);
      size += part.length;
      if (size >= maxBytes) break;
    }
    return { offset: from, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts) };
  }

  /** Resolves when new data arrives past `offset`, on close, or when `signal` aborts. */
  waitForData(offset: number, signal?: AbortSignal): Promise<void> {
    if (this.#end > offset || this.#closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Yields slices from `offset` until EOF or until `signal` aborts. */
  async *read(
    offset: number,
    signal?: AbortSignal,
    maxChunkBytes = 1024 * 1024,
  ): AsyncGenerator<OutputSlice> {
    let next = offset;
    while (!signal?.aborted) {
      const slice = this.readNow(next, maxChunkBytes);
      if (slice.data.length > 0) {
        next = slice.offset + slice.data.length;
        yield slice;
        continue;
      }
      if (this.#closed) return;
      await this.waitForData(next, signal);
    }
  }

  /** All buffered bytes (tests and the V1 log stream). */
  all(): Buffer {
    return this.readNow(0, Number.POSITIVE_INFINITY).data;
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}
