// Longer than 400 lines on purpose: one renderer (a terminal emulator fed in order, its scrolled-off rows
// collected, two read positions over the same rows); the queue, the row walk and the fast path share its state.
import { StringDecoder } from "node:string_decoder";
import headless, { type IBuffer, type Terminal as XTerm } from "@xterm/headless";
import { lastRowsStart, plainLength, plainLines } from "./plain-text.js";
import { TextStore } from "./text-store.js";

const { Terminal } = headless;

/** Size of the terminal the shell runs in, and of the screen that renders it. */
export interface ScreenSize {
  cols: number;
  rows: number;
}

/** The window every pty shell gets: wide (no wrapping surprises, like OpenHands' 1000-column tmux window). */
export const TERMINAL_SIZE: ScreenSize = { cols: 1000, rows: 50 };

/** Scrolled-off rows the emulator keeps; each write is cut so fewer scroll before they are collected. */
const SCROLLBACK_ROWS = 256;
/** At most this many line feeds and bytes go to the emulator in one write. */
const MAX_FEEDS_PER_WRITE = 128;
const MAX_BYTES_PER_WRITE = 16 * 1024;
/** Bytes waiting for the emulator above which the producer is paused (and resumed once below a quarter). */
const HIGH_WATER_BYTES = 1024 * 1024;
/** How long plain output waits for more (so the fast path gets more than a screenful), and how much is enough. */
const BATCH_MS = 4;
const BATCH_BYTES = 256 * 1024;
/** The queue is rendered synchronously for at most this long before yielding to the event loop. */
const SLICE_MS = 8;
/** Plain text is decoded and appended in pieces of at most this many bytes. */
const PLAIN_PIECE_BYTES = 64 * 1024;
/** Queued plain text taken in one fast pass at most. */
const MAX_FAST_BYTES = 1024 * 1024;
/** Less plain text than this goes through the emulator (the fast pass has a fixed cost). */
const MIN_FAST_BYTES = 4096;

/** What {@link TerminalScreen.take} returns. */
export interface ScreenText {
  /** The new text (rows right-trimmed, wrapped rows joined; the caller trims the ends). */
  text: string;
  /** True when an earlier take since the last clear returned text (the caller strips as OpenHands does). */
  continued: boolean;
}

/**
 * A read position over the normal screen, in virtual row numbers (row index + rows the emulator dropped from
 * its top since the last reset), which stay valid while the scrollback scrolls.
 */
interface ReadPosition {
  /** The last row returned, and its text then: when it grows, only the new part is returned. */
  anchor: number | undefined;
  anchorText: string;
  /** Takes only: rows above the anchor as returned; one that changed since (e.g. after `clear`) comes again. */
  seen: Map<number, string> | undefined;
  /** Nothing returned since the screen was cleared: the first row gets no separator. */
  atStart: boolean;
  /** The fast path ended inside a line: the next row continues it. */
  joinNext: boolean;
}

const newPosition = (seen: boolean): ReadPosition => ({
  anchor: undefined,
  anchorText: "",
  seen: seen ? new Map() : undefined,
  atStart: true,
  joinNext: false,
});

type Item =
  | { kind: "data"; data: Buffer }
  | { kind: "note"; text: string }
  | { kind: "take"; resolve: (t: ScreenText) => void }
  | { kind: "clear" };

/** The emulator internals the renderer needs: its normal buffer's "rows dropped from the top" event. */
interface EmulatorInternals {
  _core?: { buffers?: { normal?: { lines?: { onTrim?: (listener: (n: number) => void) => unknown } } } };
}

/**
 * Turns a pty's byte stream into the text a person would see, like `tmux capture-pane -J` but keeping every
 * line: a headless xterm applies cursor movement, `\r`, erase and colour sequences (colours dropped), and shows
 * a full-screen program's alternate screen. Rows that scroll off are collected at once into a bounded
 * head-and-tail store, so 50 MB of output costs a few MiB, not 50 MB of scrollback.
 *
 * Everything goes through one queue in arrival order (output, notes, takes, clears), so a take sees exactly the
 * output that arrived before it. Long runs of plain text (no control characters) skip the emulator: all but
 * the last screenful go straight to the store, which keeps `seq 1 1000000` or a 50 MB line cheap.
 *
 * Two read positions walk the same rows: {@link take} (observations, OpenHands' rule: a row returned before and
 * since extended gives only its new part; a row that changed otherwise comes again) and {@link onText} (live
 * output: new rows, the new part of the last row, or `\r` + a rewritten last row).
 */
export class TerminalScreen {
  readonly #size: ScreenSize;
  readonly #term: XTerm;
  readonly #queue: Item[] = [];
  #queuedBytes = 0;
  #busy = false;
  #paused = false;
  #batchTimer: NodeJS.Timeout | undefined;
  /** The batch wait is over: take what is queued. */
  #batched = false;
  /** Rows the normal buffer dropped from its top since the last reset (virtual row = row + this). */
  #trimmed = 0;
  /** First row of the normal buffer (virtual) not yet collected. */
  #harvested = 0;
  /** Collected rows of the current command not yet taken. */
  readonly #pending = new TextStore();
  #take: ReadPosition = newPosition(true);
  #stream: ReadPosition = newPosition(false);
  /** Alternate-screen text last returned by a take (OpenHands' prefix rule on the whole screen). */
  #altTaken = "";
  #tookSinceClear = false;
  /** The emulator needs a reset at the next clear (it scrolled or showed the alternate screen), not an erase. */
  #dirty = false;
  readonly #listeners = new Set<(text: string) => void>();
  readonly #flow: { pause(): void; resume(): void };
  readonly #idleWaiters: (() => void)[] = [];
  #disposed = false;

  /**
   * @param respond receives the emulator's answers to the program's queries (cursor position, device
   *   attributes), to be written back to the pty as a terminal would.
   * @param flow pauses the producer while the emulator is behind, so memory stays bounded.
   */
  constructor(
    size: ScreenSize,
    respond: (data: string) => void,
    flow: { pause(): void; resume(): void } = { pause() {}, resume() {} },
  ) {
    this.#size = size;
    this.#flow = flow;
    this.#term = new Terminal({
      cols: size.cols,
      rows: size.rows,
      scrollback: SCROLLBACK_ROWS,
      allowProposedApi: true,
      logLevel: "off",
    });
    this.#term.onData(respond);
    this.#term.buffer.onBufferChange((b) => {
      if (b.type === "alternate") {
        this.#altTaken = "";
        this.#dirty = true;
      }
    });
    this.#watchTrims();
  }

  /** Queues output of the pty. */
  write(data: Buffer): void {
    if (data.length === 0 || this.#disposed) return;
    this.#queue.push({ kind: "data", data });
    this.#queuedBytes += data.length;
    if (!this.#paused && this.#queuedBytes > HIGH_WATER_BYTES) {
      this.#paused = true;
      this.#flow.pause();
    }
    this.#pump();
  }

  /** Queues text shown as if printed on a new line (job notices): `\n` becomes CR LF. */
  note(text: string): void {
    this.#queue.push({ kind: "note", text });
    this.#pump();
  }

  /** Queues a take: resolves with the text that appeared since the previous take, once rendered. */
  take(): Promise<ScreenText> {
    if (this.#disposed) return Promise.resolve({ text: "", continued: false });
    return new Promise((resolve) => {
      this.#queue.push({ kind: "take", resolve });
      this.#pump();
    });
  }

  /** Queues a clear: the next command starts on an empty screen with nothing pending. */
  clear(): void {
    this.#queue.push({ kind: "clear" });
    this.#pump();
  }

  /** Resolves once everything queued so far has been rendered. */
  idle(): Promise<void> {
    if (this.#disposed || (!this.#busy && this.#queue.length === 0)) return Promise.resolve();
    return new Promise((res) => this.#idleWaiters.push(res));
  }

  /** True while the alternate screen (a full-screen program) is shown. */
  get alternate(): boolean {
    return this.#term.buffer.active.type === "alternate";
  }

  /**
   * Subscribes to the new visible text as it is rendered: new rows, the new part of the last row, or `\r` and
   * the whole last row when it was rewritten (a progress bar). A first listener sees what is rendered from
   * now on. Full-screen programs are not streamed.
   */
  onText(listener: (text: string) => void): () => void {
    if (this.#listeners.size === 0) this.#markStreamHere();
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Frees the emulator. Takes still queued resolve with what was rendered; nothing is rendered after. */
  dispose(): void {
    clearTimeout(this.#batchTimer);
    const queued = this.#queue.splice(0);
    for (const item of queued) if (item.kind === "take") item.resolve(this.#takeNow());
    this.#disposed = true;
    this.#busy = true;
    this.#term.dispose();
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  #watchTrims(): void {
    const lines = (this.#term as unknown as EmulatorInternals)._core?.buffers?.normal?.lines;
    if (typeof lines?.onTrim !== "function") {
      throw new Error(
        "@xterm/headless has no buffers.normal.lines.onTrim: the renderer is written for @xterm/headless 6.0.0",
      );
    }
    lines.onTrim((n) => {
      this.#trimmed += n;
    });
  }

  #pump(): void {
    const started = performance.now();
    while (!this.#busy) {
      if (this.#queue.length === 0) {
        for (const w of this.#idleWaiters.splice(0)) w();
        return;
      }
      if (this.#waitForMore()) return;
      if (performance.now() - started > SLICE_MS) {
        // Rendered synchronously for a while: let the event loop serve requests, then go on.
        this.#busy = true;
        setImmediate(() => {
          this.#busy = false;
          this.#pump();
        });
        return;
      }
      const item = this.#queue.shift()!;
      switch (item.kind) {
        case "data":
          this.#queuedBytes -= item.data.length;
          if (this.#paused && this.#queuedBytes < HIGH_WATER_BYTES / 4) {
            this.#paused = false;
            this.#flow.resume();
          }
          this.#writeData(item.data);
          break;
        case "note": {
          const lead = this.#term.buffer.active.cursorX > 0 ? "\r\n" : "";
          this.#send(Buffer.from(lead + item.text.replace(/\r?\n/g, "\r\n")), () => undefined);
          break;
        }
        case "take":
          item.resolve(this.#takeNow());
          break;
        case "clear":
          this.#clearNow();
          break;
      }
    }
  }

  /**
   * Plain output arriving in small chunks waits a few ms for more, so the fast path gets a screenful and more
   * at once. A take, a note or a clear ends the wait at once: completions are not delayed.
   */
  #waitForMore(): boolean {
    if (this.#batchTimer) {
      if (this.#queuedBytes < BATCH_BYTES && this.#queue.every((i) => i.kind === "data")) return true;
      clearTimeout(this.#batchTimer);
      this.#batchTimer = undefined;
      return false;
    }
    if (this.#batched) {
      this.#batched = false;
      return false;
    }
    const head = this.#queue[0]!;
    if (head.kind !== "data" || this.#queue.length > 1 || this.#queuedBytes >= BATCH_BYTES) return false;
    if (plainLength(head.data) !== head.data.length) return false;
    this.#batchTimer = setTimeout(() => {
      this.#batchTimer = undefined;
      this.#batched = true;
      this.#pump();
    }, BATCH_MS);
    return true;
  }

  /**
   * Feeds the next queued chunk: a backlog of plain text (up to 1 MiB of queued chunks, not copied together)
   * through the fast path when it can, else one bounded piece through the emulator.
   */
  #writeData(first: Buffer): void {
    const parts = [first];
    let total = first.length;
    if (plainLength(first) === first.length) {
      while (total < MAX_FAST_BYTES && this.#queue[0]?.kind === "data") {
        const next = (this.#queue.shift() as { data: Buffer }).data;
        this.#queuedBytes -= next.length;
        parts.push(next);
        total += next.length;
        if (plainLength(next) !== next.length) break;
      }
    }
    if (this.#fastReady()) {
      const split = this.#fastSplit(parts);
      if (split) {
        this.#fastPlain(split.middle);
        // The visible rows were collected: erase them so the last screenful starts at the top.
        this.#requeue([Buffer.from("\x1b[H\x1b[2J"), split.rest]);
        return;
      }
    }
    this.#requeue(parts.slice(1));
    const cut = pieceEnd(first);
    this.#send(cut < first.length ? first.subarray(0, cut) : first, () => {
      if (cut < first.length) this.#requeue([first.subarray(cut)]);
    });
  }

  /** Puts chunks back at the front of the queue, in order. */
  #requeue(chunks: Buffer[]): void {
    for (let i = chunks.length - 1; i >= 0; i--) {
      this.#queue.unshift({ kind: "data", data: chunks[i]! });
      this.#queuedBytes += chunks[i]!.length;
    }
  }

  /**
   * One write to the emulator; after it: collect scrolled rows, stream, run `then`. Synchronous when the
   * emulator offers it (its public write waits for a timer, a millisecond on every command's round trip); the
   * pump then goes on in its loop.
   */
  #send(piece: Buffer, then: () => void): void {
    const after = () => {
      this.#harvest();
      this.#emitStream();
      then();
    };
    const core = (this.#term as unknown as { _core?: { writeSync?: (data: Uint8Array) => void } })._core;
    if (typeof core?.writeSync === "function") {
      core.writeSync(piece);
      after();
      return;
    }
    this.#busy = true;
    this.#term.write(piece, () => {
      after();
      this.#busy = false;
      this.#pump();
    });
  }

  /** Moves rows that scrolled off the normal screen into the pending store (and the stream). */
  #harvest(): void {
    const buf = this.#term.buffer.normal;
    const from = Math.max(0, this.#harvested - this.#trimmed);
    const end = buf.baseY;
    if (end <= from) return;
    this.#dirty = true;
    this.#collectRows(buf, from, end);
    this.#harvested = end + this.#trimmed;
  }

  /** Walks rows `[from, end)` (leaving the screen) for both read positions into the store and the stream. */
  #collectRows(buf: IBuffer, from: number, end: number): void {
    const streaming = this.#listeners.size > 0;
    const takeOut: string[] = [];
    const streamOut: string[] = [];
    for (let i = from; i < end; i++) {
      const text = rowText(buf, i);
      this.#walkRow(this.#take, buf, i, text, takeOut);
      if (streaming) this.#walkRow(this.#stream, buf, i, text, streamOut);
    }
    this.#pending.append(takeOut.join(""));
    if (streamOut.length > 0) this.#emit(streamOut.join(""));
    // Rows that left the screen are behind every read position now.
    const last = end - 1 + this.#trimmed;
    for (const p of [this.#take, this.#stream]) {
      if (p.anchor !== undefined && p.anchor <= last) p.anchor = undefined;
      if (p.seen) for (const v of p.seen.keys()) if (v <= last) p.seen.delete(v);
    }
  }

  /** Appends row `i` to `out` as seen from `p`: rows it returned are skipped, its last row is extended. */
  #walkRow(p: ReadPosition, buf: IBuffer, i: number, text: string, out: string[]): void {
    const v = i + this.#trimmed;
    if (p.anchor !== undefined && v < p.anchor) {
      const seen = p.seen?.get(v);
      // A row returned before: skipped, unless it changed since (the screen was rewritten) and is not blank.
      if (seen === undefined || seen === text || text.trim() === "") return;
    } else if (p.anchor === v) {
      if (text.startsWith(p.anchorText)) out.push(text.slice(p.anchorText.length));
      else out.push(p === this.#stream ? `\r${text}` : text);
      p.atStart = false;
      p.joinNext = false;
      return;
    }
    out.push(p.atStart || p.joinNext || buf.getLine(i)?.isWrapped ? text : `\n${text}`);
    p.atStart = false;
    p.joinNext = false;
  }

  /** Rows of the normal screen from the first uncollected one to the cursor or the last non-blank row. */
  #screenRows(): { buf: IBuffer; from: number; to: number } {
    const buf = this.#term.buffer.normal;
    let to = buf.baseY + buf.cursorY;
    for (let i = buf.baseY + this.#size.rows - 1; i > to; i--) {
      if (buf.getLine(i)?.translateToString(true).trim()) {
        to = i;
        break;
      }
    }
    return { buf, from: Math.max(this.#harvested - this.#trimmed, buf.baseY), to };
  }

  #takeNow(): ScreenText {
    const continued = this.#tookSinceClear;
    this.#tookSinceClear = true;
    if (this.alternate) {
      const screen = altScreenText(this.#term.buffer.alternate, this.#size.rows);
      const part = screen.startsWith(this.#altTaken) ? screen.slice(this.#altTaken.length) : screen;
      this.#altTaken = screen;
      const before = this.#pendingText();
      return { text: before && part ? `${before}\n${part}` : before + part, continued };
    }
    const { buf, from, to } = this.#screenRows();
    const out: string[] = [];
    const texts: string[] = [];
    for (let i = from; i <= to; i++) {
      const text = rowText(buf, i);
      texts.push(text);
      this.#walkRow(this.#take, buf, i, text, out);
    }
    const seen = this.#take.seen!;
    seen.clear();
    for (let i = from; i < to; i++) seen.set(i + this.#trimmed, texts[i - from]!);
    if (to >= from) this.#setAnchor(this.#take, to, texts[to - from]!);
    return { text: this.#pendingText() + out.join(""), continued };
  }

  #pendingText(): string {
    if (this.#pending.empty) return "";
    const text = this.#pending.joined();
    this.#pending.clear();
    return text;
  }

  #emitStream(): void {
    if (this.#listeners.size === 0 || this.alternate) return;
    const { buf, from, to } = this.#screenRows();
    const out: string[] = [];
    let lastText = "";
    for (let i = from; i <= to; i++) {
      lastText = rowText(buf, i);
      this.#walkRow(this.#stream, buf, i, lastText, out);
    }
    if (to >= from) this.#setAnchor(this.#stream, to, lastText);
    const text = out.join("");
    if (text) this.#emit(text);
  }

  /** A first listener sees output from now on: what is on the screen counts as streamed. */
  #markStreamHere(): void {
    this.#stream = newPosition(false);
    if (this.alternate) return;
    const { buf, from, to } = this.#screenRows();
    if (to >= from) this.#setAnchor(this.#stream, to, rowText(buf, to));
  }

  #setAnchor(p: ReadPosition, row: number, text: string): void {
    p.anchor = row + this.#trimmed;
    p.anchorText = text;
    p.atStart = false;
  }

  #emit(text: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(text);
      } catch {
        // a listener's failure must not stop rendering
      }
    }
  }

  #clearNow(): void {
    this.#take = newPosition(true);
    this.#stream = newPosition(false);
    this.#pending.clear();
    this.#altTaken = "";
    this.#tookSinceClear = false;
    this.#trimmed = 0;
    this.#harvested = 0;
    if (this.#dirty) {
      // A reset frees what a long output used and leaves any mode a program set (alternate screen, colours).
      this.#term.reset();
      this.#watchTrims();
      this.#dirty = false;
      return;
    }
    // Nothing scrolled: erasing the screen is enough (and cheaper than a reset).
    this.#send(Buffer.from("\x1b[H\x1b[2J"), () => undefined);
  }

  /**
   * Splits queued chunks for the fast path: `middle` is their plain text minus the last screenful of rows,
   * `rest` what the emulator renders after it; undefined when there is too little plain text.
   */
  #fastSplit(parts: Buffer[]): { middle: string[]; rest: Buffer } | undefined {
    const { cols, rows } = this.#size;
    let k = parts.length - 1;
    let last = parts[k]!;
    let pos = lastRowsStart(last, cols, rows);
    // Too few rows in the last chunk: join the ones before it (a copy of about one screenful at most).
    while (pos < 0 && k > 0) {
      k--;
      last = Buffer.concat([parts[k]!, last]);
      pos = lastRowsStart(last, cols, rows);
    }
    if (pos < 0) return undefined;
    let middleBytes = pos;
    for (let i = 0; i < k; i++) middleBytes += parts[i]!.length;
    if (middleBytes < MIN_FAST_BYTES) return undefined;
    // Decoded in pieces of at most 64 KiB: strings that size stay out of V8's large-object space.
    const decoder = new StringDecoder("utf8");
    const middle: string[] = [];
    for (const bytes of [...parts.slice(0, k), last.subarray(0, pos)]) {
      for (let off = 0; off < bytes.length; ) {
        const end = pieceCut(bytes, off, PLAIN_PIECE_BYTES);
        middle.push(decoder.write(bytes.subarray(off, end)));
        off = end;
      }
    }
    const tail = decoder.end();
    if (tail) middle.push(tail);
    return { middle, rest: last.subarray(pos) };
  }

  /**
   * The fast path is exact when the cursor is at the end of its row's text with nothing below, on the normal
   * screen without a scroll region, and no read position is below the cursor.
   */
  #fastReady(): boolean {
    const buf = this.#term.buffer.active;
    if (buf.type !== "normal") return false;
    const region = scrollRegion(this.#term);
    if (region && (region.top !== 0 || region.bottom !== this.#size.rows - 1)) return false;
    const cursorRow = buf.baseY + buf.cursorY;
    if (buf.getLine(cursorRow)?.translateToString(true, buf.cursorX)) return false;
    for (let y = buf.cursorY + 1; y < this.#size.rows; y++) {
      if (buf.getLine(buf.baseY + y)?.translateToString(true)) return false;
    }
    const cursorV = cursorRow + this.#trimmed;
    return !(
      (this.#take.anchor !== undefined && this.#take.anchor > cursorV) ||
      (this.#stream.anchor !== undefined && this.#stream.anchor > cursorV)
    );
  }

  /**
   * Plain text that would scroll straight off the screen: the rows above the cursor are collected as if
   * scrolled, the cursor row's text and the plain text are appended as lines, and the caller erases the screen.
   */
  #fastPlain(middle: string[]): void {
    const buf = this.#term.buffer.normal;
    const cursorRow = buf.baseY + buf.cursorY;
    this.#collectRows(buf, Math.max(0, this.#harvested - this.#trimmed), cursorRow);
    // The unfinished last line is carried into the next piece (so it is trimmed once it ends), unless too long.
    let carry = buf.getLine(cursorRow)?.translateToString(false, 0, buf.cursorX) ?? "";
    let first = true;
    let open = false;
    const streaming = this.#listeners.size > 0;
    const emit = (text: string, textOpen: boolean) => {
      if (first) {
        // The first text continues the cursor row: each read position applies its own rule to it.
        first = false;
        const takeOut: string[] = [];
        this.#walkRow(this.#take, buf, cursorRow, text, takeOut);
        this.#pending.append(takeOut.join(""));
        if (streaming) {
          const streamOut: string[] = [];
          this.#walkRow(this.#stream, buf, cursorRow, text, streamOut);
          if (streamOut[0]) this.#emit(streamOut[0]);
        }
      } else {
        const out = open ? text : `\n${text}`;
        this.#pending.append(out);
        if (streaming) this.#emit(out);
      }
      open = textOpen;
    };
    for (const piece of middle) {
      const lines = plainLines(carry, piece);
      carry = "";
      if (!lines.open) emit(lines.text, false);
      else {
        const nl = lines.text.lastIndexOf("\n");
        if (lines.text.length - nl - 1 > PLAIN_PIECE_BYTES) emit(lines.text, true);
        else {
          if (nl >= 0) emit(lines.text.slice(0, nl), false);
          carry = lines.text.slice(nl + 1);
        }
      }
    }
    if (carry || first) emit(carry, true);
    this.#take.joinNext = open;
    this.#stream.joinNext = open;
    // Every row up to the cursor is collected, and the screen is erased next: its rows are all new again.
    for (const p of [this.#take, this.#stream]) {
      p.anchor = undefined;
      p.seen?.clear();
    }
    this.#harvested = buf.baseY + this.#trimmed;
    this.#dirty = true;
  }
}

/** Text of row `i`: right-trimmed unless the next row continues it (a wrapped line). */
function rowText(buf: IBuffer, i: number): string {
  const line = buf.getLine(i);
  if (!line) return "";
  const continued = buf.getLine(i + 1)?.isWrapped ?? false;
  return continued ? line.translateToString(false) : line.translateToString(true).trimEnd();
}

function altScreenText(buf: IBuffer, rows: number): string {
  const out: string[] = [];
  for (let y = 0; y < rows; y++) {
    const text = rowText(buf, buf.baseY + y);
    out.push(y === 0 || buf.getLine(buf.baseY + y)?.isWrapped ? text : `\n${text}`);
  }
  return out.join("").trimEnd();
}

/**
 * End of the plain piece starting at `off`: at most `max` bytes, after the last line feed in them when there is
 * one (a line then never straddles two pieces), else before the next line feed if that comes right after.
 */
function pieceCut(bytes: Buffer, off: number, max: number): number {
  const end = off + max;
  if (end >= bytes.length) return bytes.length;
  const lf = bytes.lastIndexOf(0x0a, end - 1);
  if (lf >= off) return lf + 1;
  let cut = end;
  while (cut < bytes.length && (bytes[cut] === 0x0d || bytes[cut] === 0x0a)) cut++;
  return cut;
}

/** Where the next piece ends: at most {@link MAX_FEEDS_PER_WRITE} line feeds and {@link MAX_BYTES_PER_WRITE} bytes. */
function pieceEnd(data: Buffer): number {
  const limit = Math.min(data.length, MAX_BYTES_PER_WRITE);
  let feeds = 0;
  for (let i = data.indexOf(0x0a); i >= 0 && i < limit; i = data.indexOf(0x0a, i + 1)) {
    if (++feeds >= MAX_FEEDS_PER_WRITE) return i + 1;
  }
  return limit;
}

/** The emulator's scroll region when its internals expose it (not public API); undefined otherwise. */
function scrollRegion(term: XTerm): { top: number; bottom: number } | undefined {
  const core = (term as unknown as { _core?: { buffer?: { scrollTop?: unknown; scrollBottom?: unknown } } })
    ._core;
  const top = core?.buffer?.scrollTop;
  const bottom = core?.buffer?.scrollBottom;
  return typeof top === "number" && typeof bottom === "number" ? { top, bottom } : undefined;
}
