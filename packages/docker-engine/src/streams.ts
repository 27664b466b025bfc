/** Which stream a frame of a multiplexed (non-TTY) container stream belongs to. */
export type StreamKind = "stdin" | "stdout" | "stderr";

const KINDS: Record<number, StreamKind> = { 0: "stdin", 1: "stdout", 2: "stderr" };

/**
 * Splits the engine's multiplexed stream (8-byte header: stream type, 3 zero bytes, big-endian length; then the
 * payload) into frames, across chunk boundaries. Feed it chunks; it calls `onFrame` per complete frame.
 */
export class Demuxer {
  #pending: Buffer = Buffer.alloc(0);
  readonly #onFrame: (kind: StreamKind, data: Buffer) => void;

  constructor(onFrame: (kind: StreamKind, data: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  write(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    for (;;) {
      if (this.#pending.length < 8) return;
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < 8 + size) return;
      const kind = KINDS[this.#pending[0] as number] ?? "stdout";
      const data = this.#pending.subarray(8, 8 + size);
      this.#pending = this.#pending.subarray(8 + size);
      this.#onFrame(kind, data);
    }
  }

  /** Bytes of an unfinished frame still held. */
  get pendingBytes(): number {
    return this.#pending.length;
  }
}

/** Demultiplexes a whole buffer into stdout and stderr text. */
export function demuxAll(buffer: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  new Demuxer((kind, data) => (kind === "stderr" ? err : out).push(data)).write(buffer);
  return { stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
}

/**
 * Splits a stream of JSON messages (the engine's build and pull progress: one object per line, `\r\n` or `\n`)
 * into parsed objects. A line that is not JSON is passed on as `{ stream: line }`.
 */
export class JsonLines {
  #pending = "";
  readonly #onMessage: (message: Record<string, unknown>) => void;

  constructor(onMessage: (message: Record<string, unknown>) => void) {
    this.#onMessage = onMessage;
  }

  write(chunk: Buffer | string): void {
    this.#pending += chunk.toString();
    const lines = this.#pending.split(/\r?\n/);
    this.#pending = lines.pop() ?? "";
    for (const line of lines) this.#emit(line);
  }

  end(): void {
    const rest = this.#pending;
    this.#pending = "";
    this.#emit(rest);
  }

  #emit(line: string): void {
    if (line.trim() === "") return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.#onMessage({ stream: `${line}\n` });
      return;
    }
    if (typeof parsed === "object" && parsed !== null) this.#onMessage(parsed as Record<string, unknown>);
  }
}

/** The last `maxLines` lines of text, each cut to 500 characters. */
export function tailLines(text: string, maxLines: number): string {
  const lines = text.replace(/\s+$/, "").split("\n");
  return lines
    .slice(-maxLines)
    .map((l) => (l.length > 500 ? `${l.slice(0, 500)}…` : l))
    .join("\n");
}
