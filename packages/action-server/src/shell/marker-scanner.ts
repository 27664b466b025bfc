/** Record separator that opens and closes a marker. */
const RS = 0x1e;
/** Unit separator between a marker's fields. */
export const FIELD_SEPARATOR = "\x1f";

/**
 * Splits a byte stream into output and in-band markers (reported without the nonce)
 * `\x1e<nonce>\x1f<field>\x1f...\x1e\n` (`\x1e\r\n` when a terminal's output processing turned the newline
 * into CR LF). The nonce is random per process, so program output cannot fake a marker by accident. A marker
 * split across chunks is held back until complete; nothing else is delayed.
 */
export class MarkerScanner {
  readonly #start: Buffer;
  #pending: Buffer = Buffer.alloc(0);

  constructor(
    nonce: string,
    private readonly onData: (chunk: Buffer) => void,
    private readonly onMarker: (fields: string[]) => void,
  ) {
    this.#start = Buffer.from(`\x1e${nonce}${FIELD_SEPARATOR}`, "latin1");
  }

  /** The opening bytes of a marker (for the printf in the shell). */
  get startSequence(): string {
    return this.#start.toString("latin1");
  }

  push(chunk: Buffer): void {
    let data = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = Buffer.alloc(0);
    for (;;) {
      const at = data.indexOf(this.#start);
      if (at < 0) break;
      if (at > 0) this.onData(data.subarray(0, at));
      const body = at + this.#start.length;
      const end = findEnd(data, body);
      if (end < 0) {
        this.#pending = Buffer.from(data.subarray(at));
        return;
      }
      this.onMarker(data.subarray(body, end).toString("utf8").split(FIELD_SEPARATOR));
      data = data.subarray(end + (data[end + 1] === 0x0d ? 3 : 2));
    }
    const hold = this.#partialStart(data);
    if (hold < data.length) {
      this.#pending = Buffer.from(data.subarray(hold));
      data = data.subarray(0, hold);
    }
    if (data.length > 0) this.onData(data);
  }

  /** Bytes held back (a marker's beginning) released as output, e.g. when the process ended. */
  flush(): void {
    if (this.#pending.length > 0) this.onData(this.#pending);
    this.#pending = Buffer.alloc(0);
  }

  /** Index from which `data` may be the beginning of a marker (data.length if not). */
  #partialStart(data: Buffer): number {
    const from = Math.max(0, data.length - this.#start.length + 1);
    for (let i = data.indexOf(RS, from); i >= 0 && i < data.length; i = data.indexOf(RS, i + 1)) {
      const tail = data.subarray(i);
      if (this.#start.subarray(0, tail.length).equals(tail)) return i;
    }
    return data.length;
  }
}

/** Index of the closing `\x1e` (followed by LF or CR LF), -1 while incomplete. */
function findEnd(data: Buffer, from: number): number {
  for (let i = data.indexOf(RS, from); i >= 0; i = data.indexOf(RS, i + 1)) {
    if (i + 1 >= data.length) return -1;
    if (data[i + 1] === 0x0a) return i;
    if (data[i + 1] === 0x0d) {
      if (i + 2 >= data.length) return -1;
      if (data[i + 2] === 0x0a) return i;
    }
  }
  return -1;
}
