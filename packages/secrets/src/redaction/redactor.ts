import { inspect } from "node:util";
import type { Logger, Redactor } from "@agent-runtime/runtime-core";
import { encodedForms } from "./forms.js";
import { holdBackFrom, isWrapPattern, WrapSearch } from "./wrapped.js";

/** Options of {@link createRedactor}. */
export interface RedactorOptions {
  /**
   * Values shorter than this are not registered (they would match ordinary text); each is reported once
   * with a warning naming the variable, never the value.
   * @default 6
   */
  minLength?: number;
  /**
   * Replacement text.
   * @default "[redacted]"
   */
  placeholder?: string;
  /** Receives the too-short warnings. @default no warnings */
  logger?: Logger;
}

/**
 * Redacts a text that arrives in chunks. `write` returns what is safe to emit now and holds back
 * `maxPatternLength - 1` characters, line breaks not counted (a wrapped encoding spans more characters;
 * never more than `3 * maxPatternLength` in all), so a value split across chunks, or across chunks and line
 * breaks, is still caught; `flush` returns the rest.
 *
 * @example
 * ```ts
 * const stream = redactor.createStream();
 * for await (const chunk of output) process.stdout.write(stream.write(chunk));
 * process.stdout.write(stream.flush());
 * ```
 */
export interface RedactionStream {
  /** Adds a chunk; returns the redacted text that can no longer be part of a secret. */
  write(chunk: string): string;
  /** Ends the stream; returns the redacted remainder. */
  flush(): string;
}

/** A {@link Redactor} that also redacts streams and reports what it knows, without values. */
export interface SecretRedactor extends Redactor {
  /** Number of distinct patterns (values and their encoded forms) searched for. */
  readonly patternCount: number;
  /** Length of the longest pattern; a stream holds back this minus one characters, besides line breaks. */
  readonly maxPatternLength: number;
  /** Starts redacting a chunked text (see {@link RedactionStream}). */
  createStream(): RedactionStream;
  /** Returns `err` (or a copy of it) with message, stack, cause and own fields redacted; keeps its prototype. */
  redactError<T>(err: T): T;
}

const REGEX_SPECIALS = /[.*+?^${}()|[\]\\/-]/g;

/** One global regex matching any of `patterns`, longest first; undefined when there are none. */
function alternation(patterns: readonly string[]): RegExp | undefined {
  return patterns.length
    ? new RegExp(patterns.map((p) => p.replace(REGEX_SPECIALS, "\\$&")).join("|"), "g")
    : undefined;
}

class PatternRedactor implements SecretRedactor {
  readonly #regex: RegExp | undefined;
  /** Searches the patterns made only of base64/token characters again across line breaks. */
  readonly #wrap: WrapSearch | undefined;
  readonly #placeholder: string;
  /** Every pattern, longest first (a stream's tail is held back only while it could begin one of them). */
  readonly #patterns: readonly string[];
  readonly #firstChars: ReadonlySet<string>;
  readonly patternCount: number;
  readonly maxPatternLength: number;

  constructor(patterns: readonly string[], placeholder: string) {
    // Longest first, so a value is replaced whole even when a shorter secret is a part of it.
    const sorted = [...new Set(patterns)].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    this.#patterns = sorted;
    this.#firstChars = new Set(sorted.map((p) => p[0]!));
    const wrappable = sorted.filter(isWrapPattern);
    this.patternCount = sorted.length;
    this.maxPatternLength = sorted[0]?.length ?? 0;
    this.#placeholder = placeholder;
    this.#regex = alternation(sorted);
    const wrapRegex = alternation(wrappable);
    this.#wrap = wrapRegex && new WrapSearch(wrappable, wrapRegex);
  }

  get isEmpty(): boolean {
    return this.#regex === undefined;
  }

  redact(text: string): string {
    if (this.#regex === undefined || typeof text !== "string") return text;
    const wrapped = this.#wrap?.matches(text) ?? [];
    this.#regex.lastIndex = 0;
    if (wrapped.length === 0) return text.replace(this.#regex, () => this.#placeholder);
    const ranges = mergeRanges(plainMatches(text, this.#regex), wrapped);
    let out = "";
    let last = 0;
    for (let i = 0; i < ranges.length; i += 2) {
      out += text.slice(last, ranges[i]) + this.#placeholder;
      last = ranges[i + 1]!;
    }
    return out + text.slice(last);
  }

  redactDeep<T>(value: T): T {
    if (this.#regex === undefined) return value;
    return this.#deep(value, new WeakMap()) as T;
  }

  redactError<T>(err: T): T {
    return this.redactDeep(err);
  }

  #deep(value: unknown, seen: WeakMap<object, unknown>): unknown {
    if (typeof value === "string") return this.redact(value);
    if (typeof value !== "object" || value === null) return value;
    const known = seen.get(value);
    if (known !== undefined) return known;
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      seen.set(value, out);
      for (const item of value) out.push(this.#deep(item, seen));
      return out;
    }
    if (value instanceof Error) return this.#error(value, seen);
    if (value instanceof Map) {
      const out = new Map<unknown, unknown>();
      seen.set(value, out);
      for (const [k, v] of value) out.set(k, this.#deep(v, seen));
      return out;
    }
    if (value instanceof Set) {
      const out = new Set<unknown>();
      seen.set(value, out);
      for (const v of value) out.add(this.#deep(v, seen));
      return out;
    }
    if (ArrayBuffer.isView(value) || value instanceof Date || value instanceof RegExp) return value;
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      // A class instance: its JSON form is what a logger would print, so redact that.
      const json = (value as { toJSON?: () => unknown }).toJSON;
      if (typeof json === "function") return this.#deep(json.call(value), seen);
    }
    const out: Record<string, unknown> = {};
    seen.set(value, out);
    for (const [k, v] of Object.entries(value)) out[k] = this.#deep(v, seen);
    return out;
  }

  #error(err: Error, seen: WeakMap<object, unknown>): Error {
    const copy = Object.create(Object.getPrototypeOf(err) as object) as Error;
    seen.set(err, copy);
    const define = (key: string, v: unknown): void => {
      Object.defineProperty(copy, key, { value: v, writable: true, configurable: true, enumerable: false });
    };
    define("message", this.redact(err.message));
    if (err.stack !== undefined) define("stack", this.redact(err.stack));
    if ("cause" in err) define("cause", this.#deep(err.cause, seen));
    for (const [k, v] of Object.entries(err))
      (copy as unknown as Record<string, unknown>)[k] = this.#deep(v, seen);
    if (err instanceof AggregateError) define("errors", this.#deep(err.errors, seen));
    return copy;
  }

  createStream(): RedactionStream {
    let pending = "";
    const holdBack = Math.max(0, this.maxPatternLength - 1);
    // Sharing the regexes with redact() is safe: each search resets lastIndex and runs to its end synchronously.
    const regex = this.#regex;
    const wrap = this.#wrap;
    const placeholder = this.#placeholder;
    return {
      write: (chunk: string): string => {
        if (regex === undefined) return chunk;
        const text = pending + chunk;
        // Searched first: the regex flattens `text` (a concatenation), which makes charCodeAt cheap below.
        const ranges = mergeRanges(plainMatches(text, regex), wrap?.matches(text) ?? []);
        // Hold back `holdBack` characters, not counting line breaks (a wrapped form spans more characters), and of
        // those only from the first one where the rest of `text` could still begin a secret: a live view of output
        // then trails the program only while what it printed last looks like the start of a secret.
        let cut = this.#possibleStart(text, holdBackFrom(text, holdBack));
        if (cut <= 0) {
          pending = text;
          return "";
        }
        // A match starting before `cut` lies entirely inside `text` (every pattern is at most holdBack + 1
        // long, line breaks aside), so its outcome is final; matches starting at or after `cut` wait for more.
        let out = "";
        let last = 0;
        for (let i = 0; i < ranges.length && ranges[i]! < cut; i += 2) {
          out += text.slice(last, ranges[i]) + placeholder;
          last = ranges[i + 1]!;
        }
        if (last > cut) cut = last;
        else if (isHighSurrogate(text.charCodeAt(cut - 1))) cut -= 1;
        out += text.slice(last, cut);
        pending = text.slice(cut);
        return out;
      },
      flush: (): string => {
        const rest = pending;
        pending = "";
        return this.redact(rest);
      },
    };
  }

  /**
   * The first index at or after `from` where `text`'s rest (line breaks left out, as a wrapped form has them) is
   * the beginning of some pattern; `text.length` when there is none.
   */
  #possibleStart(text: string, from: number): number {
    for (let p = Math.max(0, from); p < text.length; p++) {
      const c = text[p]!;
      if (c === "\n" || c === "\r" || !this.#firstChars.has(c)) continue;
      const rest = text.slice(p).replace(/[\r\n]/g, "");
      if (this.#patterns.some((pattern) => pattern.startsWith(rest))) return p;
    }
    return text.length;
  }

  toJSON(): { redactor: string; patterns: number } {
    return { redactor: "[redacted]", patterns: this.patternCount };
  }

  [inspect.custom](): string {
    return `SecretRedactor { patterns: ${this.patternCount} }`;
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** Every match of a global regex as flat `[start, end, ...]`. */
function plainMatches(text: string, regex: RegExp): number[] {
  const out: number[] = [];
  regex.lastIndex = 0;
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) out.push(m.index, m.index + m[0].length);
  return out;
}

/** The union of two sorted lists of ranges (flat `[start, end, ...]`); overlapping ranges become one. */
function mergeRanges(a: readonly number[], b: readonly number[]): number[] {
  if (b.length === 0) return a as number[];
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const fromA = j >= b.length || (i < a.length && a[i]! <= b[j]!);
    const start = fromA ? a[i]! : b[j]!;
    const end = fromA ? a[i + 1]! : b[j + 1]!;
    if (fromA) i += 2;
    else j += 2;
    if (out.length > 0 && start < out[out.length - 1]!) out[out.length - 1] = Math.max(out.at(-1)!, end);
    else out.push(start, end);
  }
  return out;
}

/**
 * Builds a redactor from secret values. Pass a record (name -> value) so the too-short warning can name
 * the variable. Every value is also searched for in its encoded forms (JSON-escaped, URL-encoded, base64
 * and base64url at any alignment, CRLF, and each line of a multi-line value). Forms made only of
 * base64/token characters are also found when line breaks split them (`base64` wraps at 76 columns,
 * PEM at 64, `\r\n` or `\n`), in `redact` and in streams alike.
 *
 * @example
 * ```ts
 * const redactor = createRedactor({ GITHUB_TOKEN: token });
 * redactor.redact(`token=${token}`); // "token=[redacted]"
 * ```
 */
export function createRedactor(
  secrets: Readonly<Record<string, string>> | Iterable<string>,
  options: RedactorOptions = {},
): SecretRedactor {
  const minLength = options.minLength ?? 6;
  const entries: [string | undefined, string][] =
    typeof (secrets as Iterable<string>)[Symbol.iterator] === "function"
      ? [...(secrets as Iterable<string>)].map((v) => [undefined, v])
      : Object.entries(secrets as Record<string, string>);
  const patterns: string[] = [];
  const tooShort: string[] = [];
  let unnamedTooShort = 0;
  for (const [name, value] of entries) {
    if (value.length === 0) continue;
    if (value.length < minLength) {
      if (name === undefined) unnamedTooShort++;
      else tooShort.push(name);
      continue;
    }
    patterns.push(...encodedForms(value, minLength));
  }
  if (options.logger && (tooShort.length > 0 || unnamedTooShort > 0)) {
    options.logger.warn(
      `Secret values shorter than ${minLength} characters are not redacted (they would match ordinary text); ` +
        "they are still injected. Use longer values for anything sensitive, or lower minRedactLength.",
      { names: tooShort, ...(unnamedTooShort ? { unnamed: unnamedTooShort } : {}) },
    );
  }
  return new PatternRedactor(patterns, options.placeholder ?? "[redacted]");
}

/**
 * A redactor whose set of values grows: each {@link MutableRedactor.add} rebuilds the search. The
 * resolver exposes one that knows every value it has resolved, for the host's logs and events.
 */
export class MutableRedactor implements SecretRedactor {
  readonly #values = new Map<string, string | undefined>();
  readonly #options: RedactorOptions;
  #current: SecretRedactor;

  constructor(options: RedactorOptions = {}) {
    this.#options = options;
    this.#current = createRedactor([], options);
  }

  /** Registers more values (name -> value); values already known are ignored. */
  add(secrets: Readonly<Record<string, string>>): void {
    let changed = false;
    for (const [name, value] of Object.entries(secrets)) {
      if (this.#values.has(value)) continue;
      this.#values.set(value, name);
      changed = true;
    }
    if (!changed) return;
    const all = [...this.#values.keys()].filter((v) => v.length >= (this.#options.minLength ?? 6));
    this.#current = createRedactor(all, { ...this.#options, logger: undefined });
  }

  get isEmpty(): boolean {
    return this.#current.isEmpty;
  }
  get patternCount(): number {
    return this.#current.patternCount;
  }
  get maxPatternLength(): number {
    return this.#current.maxPatternLength;
  }
  redact(text: string): string {
    return this.#current.redact(text);
  }
  redactDeep<T>(value: T): T {
    return this.#current.redactDeep(value);
  }
  redactError<T>(err: T): T {
    return this.#current.redactError(err);
  }
  createStream(): RedactionStream {
    return this.#current.createStream();
  }
  toJSON(): { redactor: string; patterns: number } {
    return { redactor: "[redacted]", patterns: this.patternCount };
  }
  [inspect.custom](): string {
    return `SecretRedactor { patterns: ${this.patternCount} }`;
  }
}
