import type { Logger, Redactor } from "@agent-runtime/runtime-core";

/** How many of a sandbox's last output lines a failed start reports. */
export const OUTPUT_TAIL_LINES = 30;
/** Longer lines are cut (a minified stack trace can be one huge line). */
const MAX_LINE_CHARS = 500;

// CSI and OSC escape sequences: colours and cursor moves make no sense in an error message.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal escapes is the point
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)/g;

/** The streams {@link SandboxOutputTail} follows: the SDK's `sb.stdout` and `sb.stderr`. */
export interface SandboxOutputStreams {
  stdout: ReadableStream<string>;
  stderr: ReadableStream<string>;
}

/**
 * Follows a sandbox's stdout and stderr (the SDK's `sb.stdout` / `sb.stderr`: `SandboxStdioReadV2` for V2
 * sandboxes, `SandboxGetLogs` for V1) and keeps the last lines of both, in arrival order, so a failed start
 * can show why the server never came up. Lines are kept as read and redacted when taken out.
 */
export class SandboxOutputTail {
  readonly #max: number;
  readonly #lines: string[] = [];
  readonly #partial: Record<keyof SandboxOutputStreams, string> = { stdout: "", stderr: "" };
  readonly #readers: ReadableStreamDefaultReader<string>[] = [];
  readonly #ended: Promise<void>;
  #stopped = false;

  constructor(streams: SandboxOutputStreams, logger: Logger, maxLines = OUTPUT_TAIL_LINES) {
    this.#max = maxLines;
    const follow = async (name: keyof SandboxOutputStreams, stream: ReadableStream<string>) => {
      const reader = stream.getReader();
      this.#readers.push(reader);
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          this.#push(name, value);
        }
      } catch (err) {
        if (!this.#stopped)
          logger.debug("reading the sandbox's output failed", { stream: name, error: String(err) });
      } finally {
        this.#flush(name);
      }
    };
    this.#ended = Promise.all([follow("stdout", streams.stdout), follow("stderr", streams.stderr)]).then(
      () => undefined,
    );
  }

  #push(name: keyof SandboxOutputStreams, text: string): void {
    const parts = (this.#partial[name] + text).split("\n");
    this.#partial[name] = (parts.pop() ?? "").slice(-MAX_LINE_CHARS * 4);
    for (const line of parts) this.#add(line);
  }

  #flush(name: keyof SandboxOutputStreams): void {
    const rest = this.#partial[name];
    this.#partial[name] = "";
    if (rest) this.#add(rest);
  }

  #add(raw: string): void {
    const line = raw.replace(ANSI, "").replace(/\r$/, "").replace(/\s+$/, "");
    if (line === "") return;
    this.#lines.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
    if (this.#lines.length > this.#max) this.#lines.splice(0, this.#lines.length - this.#max);
  }

  /** Waits until both streams ended (the sandbox finished) or `timeoutMs` passed. */
  async settled(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#ended,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** The last lines (unfinished ones included), each passed through `redactor`. */
  lines(redactor: Redactor): string[] {
    const out = [...this.#lines];
    for (const rest of Object.values(this.#partial)) {
      const line = rest.replace(ANSI, "").replace(/\s+$/, "");
      if (line) out.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
    }
    return out.slice(-this.#max).map((line) => redactor.redact(line));
  }

  /** Stops following (the streams are cancelled); the lines read so far stay readable. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const reader of this.#readers) reader.cancel().catch(() => undefined);
  }
}
