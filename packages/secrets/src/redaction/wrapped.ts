/**
 * Finding secret forms that a line break has split: `base64` wraps its output at 76 columns, PEM at 64,
 * Windows tools end lines with `\r\n`. A pattern made only of {@link isWrapPattern}
 * characters is searched for again in "blocks": runs of such characters joined across single line breaks,
 * with the breaks removed; matches are mapped back to the original text (see {@link WrapSearch}).
 */

/** Characters of base64 and base64url text (and of most API tokens, and of hex). */
const WRAP_CHARS = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-") {
  WRAP_CHARS[c.charCodeAt(0)] = 1;
}

function isWrapChar(text: string, i: number): boolean {
  // charCodeAt is NaN outside the text, and NaN < 128 is false.
  return isWrapCode(text.charCodeAt(i));
}

/** True when a line break inside this pattern's text would not end it (every character is a wrap character). */
export function isWrapPattern(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) if (!isWrapChar(pattern, i)) return false;
  return pattern.length > 0;
}

const LF = 10;
const CR = 13;

/** Four 7-bit characters packed in one number (a key of the 4-gram filter). */
function gram(a: number, b: number, c: number, d: number): number {
  return ((a * 128 + b) * 128 + c) * 128 + d;
}

/**
 * Finds matches of wrap patterns that line breaks split. Patterns must all satisfy {@link isWrapPattern}.
 *
 * A line break is "hot" when one of the three 4-character windows around it (line break removed) occurs in
 * some pattern: a match of 4 or more characters that crosses the break contains one of them. Only runs of
 * wrap characters joined by hot breaks are searched, so ordinary multi-line text costs one `indexOf` and a
 * few look-ups per line.
 */
export class WrapSearch {
  readonly #regex: RegExp;
  readonly #minLength: number;
  /** 4-grams of the patterns; undefined when a pattern is shorter than 4 (every break is then hot). */
  readonly #grams: Set<number> | undefined;

  /** `patterns` sorted longest first, each made of wrap characters only. */
  constructor(patterns: readonly string[], regex: RegExp) {
    this.#regex = regex;
    this.#minLength = Math.min(...patterns.map((p) => p.length));
    if (this.#minLength >= 4) {
      this.#grams = new Set();
      for (const p of patterns) {
        for (let i = 0; i + 4 <= p.length; i++) {
          this.#grams.add(
            gram(p.charCodeAt(i), p.charCodeAt(i + 1), p.charCodeAt(i + 2), p.charCodeAt(i + 3)),
          );
        }
      }
    }
  }

  /**
   * Ranges (flat `[start, end, start, end, ...]`, sorted) of `text` covered by pattern matches that cross
   * at least one line break (`\n` or `\r\n`) between two wrap characters. A match within one line is not
   * reported (the plain search finds it).
   */
  matches(text: string): number[] {
    // Segments of every block (flat [start, end, ...] in `text`), and where each starts in `joined`: the
    // blocks with their breaks removed, one "\n" between blocks so that no match spans two.
    const segs: number[] = [];
    const joinedAt: number[] = [];
    const parts: string[] = [];
    let joinedLength = 0;
    let nl = text.indexOf("\n");
    while (nl !== -1) {
      const brk = nl > 0 && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
      if (!this.#hot(text, brk, nl)) {
        nl = text.indexOf("\n", nl + 1);
        continue;
      }
      let start = brk - 1;
      while (start > 0 && isWrapChar(text, start - 1)) start--;
      const block = [start, brk];
      let total = brk - start;
      let next = nl + 1;
      let end: number;
      for (;;) {
        end = next;
        while (isWrapChar(text, end)) end++;
        block.push(next, end);
        total += end - next;
        const lf = text.charCodeAt(end) === CR ? end + 1 : end;
        if (text.charCodeAt(lf) === LF && this.#hot(text, end, lf)) next = lf + 1;
        else break;
      }
      if (total >= this.#minLength) {
        for (let i = 0; i < block.length; i += 2) {
          segs.push(block[i]!, block[i + 1]!);
          joinedAt.push(joinedLength);
          parts.push(text.slice(block[i]!, block[i + 1]!));
          joinedLength += block[i + 1]! - block[i]!;
        }
        parts.push("\n");
        joinedLength += 1;
      }
      nl = text.indexOf("\n", end);
    }
    if (segs.length === 0) return [];

    const joined = parts.join("");
    const regex = this.#regex;
    const out: number[] = [];
    regex.lastIndex = 0;
    for (let m = regex.exec(joined); m !== null; m = regex.exec(joined)) {
      const a = m.index;
      const b = a + m[0].length;
      const first = segmentOf(joinedAt, a);
      const last = segmentOf(joinedAt, b - 1);
      if (first === last) continue;
      out.push(segs[2 * first]! + (a - joinedAt[first]!), segs[2 * last]! + (b - joinedAt[last]!));
    }
    return out;
  }

  /** Whether a match may cross the line break `text[brk..lf]` (`lf` is its `\n`). */
  #hot(text: string, brk: number, lf: number): boolean {
    if (!isWrapChar(text, brk - 1) || !isWrapChar(text, lf + 1)) return false;
    const grams = this.#grams;
    if (grams === undefined) return true;
    const l1 = text.charCodeAt(brk - 1);
    const l2 = text.charCodeAt(brk - 2);
    const l3 = text.charCodeAt(brk - 3);
    const r1 = text.charCodeAt(lf + 1);
    const r2 = text.charCodeAt(lf + 2);
    const r3 = text.charCodeAt(lf + 3);
    // A window reaching into another line break (lines of 1 or 2 characters): be conservative.
    if (isBreak(l2) || isBreak(l3) || isBreak(r2) || isBreak(r3)) return true;
    const w2 = isWrapCode(l2);
    const wr2 = isWrapCode(r2);
    return (
      (w2 && isWrapCode(l3) && grams.has(gram(l3, l2, l1, r1))) ||
      (w2 && wr2 && grams.has(gram(l2, l1, r1, r2))) ||
      (wr2 && isWrapCode(r3) && grams.has(gram(l1, r1, r2, r3)))
    );
  }
}

function isBreak(code: number): boolean {
  return code === LF || code === CR;
}

function isWrapCode(code: number): boolean {
  return code < 128 && WRAP_CHARS[code] === 1;
}

/** Index of the last segment whose joined start is <= `at` (binary search). */
function segmentOf(joinedAt: readonly number[], at: number): number {
  let lo = 0;
  let hi = joinedAt.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (joinedAt[mid]! <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * How many characters at the end of `text` a stream must hold back so that every match starting before
 * them (possibly split by line breaks, which do not count towards `holdBack`) lies entirely in `text`.
 * A wrapped match of n characters spans at most n + 2(n - 1) characters, so the walk is bounded.
 */
export function holdBackFrom(text: string, holdBack: number): number {
  let counted = 0;
  let i = text.length;
  const floor = Math.max(0, text.length - 3 * holdBack);
  while (i > floor && counted < holdBack) {
    i--;
    const c = text.charCodeAt(i);
    if (c !== LF && c !== CR) counted++;
  }
  return i;
}
