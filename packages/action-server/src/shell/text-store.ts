/** Characters kept from the start and from the end of one observation's rendered text. */
export const TEXT_KEEP_CHARS = 2 * 1024 * 1024;

/**
 * Rendered text of one observation, keeping at most `keepChars` from the start and `keepChars` from the end
 * (characters in between are counted, not stored), so 100 MB of output costs a few MiB. Text lives on the
 * JavaScript heap, not in Buffers (whose garbage Node collects late, which showed as resident memory).
 */
export class TextStore {
  readonly #keep: number;
  #head: string[] = [];
  #headChars = 0;
  #tail: string[] = [];
  #tailChars = 0;
  #total = 0;

  constructor(keepChars = TEXT_KEEP_CHARS) {
    this.#keep = keepChars;
  }

  /** True when nothing was appended since the last clear. */
  get empty(): boolean {
    return this.#total === 0;
  }

  append(text: string): void {
    if (text.length === 0) return;
    this.#total += text.length;
    let rest = text;
    if (this.#headChars < this.#keep) {
      const take = Math.min(rest.length, this.#keep - this.#headChars);
      this.#head.push(rest.slice(0, take));
      this.#headChars += take;
      rest = rest.slice(take);
      if (rest.length === 0) return;
    }
    this.#tail.push(rest);
    this.#tailChars += rest.length;
    while (this.#tail.length > 1 && this.#tailChars - this.#tail[0]!.length >= this.#keep) {
      this.#tailChars -= this.#tail.shift()!.length;
    }
  }

  /** Everything kept: the head, a note of the characters dropped if any, the tail. */
  joined(): string {
    const head = this.#head.join("");
    let tail = this.#tail.join("");
    const dropped = this.#total - this.#headChars - this.#tailChars;
    if (dropped === 0) return head + tail;
    if (tail.length > this.#keep) tail = tail.slice(tail.length - this.#keep);
    return `${head}\n[... ${this.#total - head.length - tail.length} characters of output omitted ...]\n${tail}`;
  }

  clear(): void {
    this.#head = [];
    this.#headChars = 0;
    this.#tail = [];
    this.#tailChars = 0;
    this.#total = 0;
  }
}
