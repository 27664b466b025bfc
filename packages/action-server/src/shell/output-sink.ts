import { StringDecoder } from "node:string_decoder";
import { OutputBuffer } from "./output-buffer.js";
import { type ScreenSize, TerminalScreen } from "./screen.js";

/** Where a shell's output goes between two observations: raw bytes (pipes) or a rendered screen (pty). */
export interface OutputSink {
  /** Output of the shell (markers already removed). */
  write(chunk: Buffer): void;
  /** Text the server adds as a terminal would show it (job notices); on its own line when `ownLine`. */
  note(text: string, ownLine: boolean): void;
  /**
   * The output since the previous take, trailing whitespace stripped, not yet cut to 30,000 characters (the
   * store itself keeps only a few MiB of head and tail).
   */
  take(): Promise<string>;
  /** Forgets what was not taken; the next command starts empty. */
  clear(): void;
  /** Live output (see BashSession.onOutput). */
  onText(listener: (text: string) => void): () => void;
  dispose(): void;
}

/** The pipe shell's sink: bytes kept head and tail, streamed as decoded text. */
export class PipeSink implements OutputSink {
  readonly #buffer = new OutputBuffer();
  readonly #listeners = new Set<(text: string) => void>();
  /** One decoder per pipe so a UTF-8 character split across reads is emitted whole. */
  readonly #decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };

  write(chunk: Buffer, pipe: "stdout" | "stderr" = "stdout"): void {
    this.#buffer.append(chunk);
    if (this.#listeners.size === 0) return;
    const text = this.#decoders[pipe].write(chunk);
    if (text) emit(this.#listeners, text);
  }

  note(text: string, ownLine: boolean): void {
    const lead = ownLine && this.#buffer.totalBytes > 0 && !this.#buffer.endsWithNewline ? "\n" : "";
    this.write(Buffer.from(lead + text));
  }

  take(): Promise<string> {
    const text = this.#buffer.text(true);
    this.#buffer.clear();
    return Promise.resolve(text);
  }

  clear(): void {
    this.#buffer.clear();
  }

  onText(listener: (text: string) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  dispose(): void {
    this.#listeners.clear();
  }
}

/**
 * The pty shell's sink: a {@link TerminalScreen}, and OpenHands' way of cutting an observation out of the pane:
 * after an earlier observation of the same command, leading whitespace goes, and so does the echo of the input
 * just typed (`name? world` continues as `hello world`, `>>> print(6*7)` as `42`).
 */
export class ScreenSink implements OutputSink {
  readonly #screen: TerminalScreen;
  #echo: string | undefined;

  constructor(size: ScreenSize, respond: (data: string) => void, flow: { pause(): void; resume(): void }) {
    this.#screen = new TerminalScreen(size, respond, flow);
  }

  /** The next take drops this text where the terminal echoed it (input typed into the running program). */
  expectEcho(text: string): void {
    this.#echo = text;
  }

  write(chunk: Buffer): void {
    this.#screen.write(chunk);
  }

  note(text: string): void {
    this.#screen.note(text);
  }

  async take(): Promise<string> {
    const echo = this.#echo;
    this.#echo = undefined;
    const { text, continued } = await this.#screen.take();
    let out = text;
    if (continued || echo !== undefined) {
      out = out.trimStart();
      if (echo) {
        const typed = echo.trimStart();
        if (typed && out.startsWith(typed)) out = out.slice(typed.length).trimStart();
      }
    }
    return out.trimEnd();
  }

  clear(): void {
    this.#screen.clear();
  }

  onText(listener: (text: string) => void): () => void {
    return this.#screen.onText(listener);
  }

  dispose(): void {
    this.#screen.dispose();
  }
}

function emit(listeners: Set<(text: string) => void>, text: string): void {
  for (const listener of listeners) {
    try {
      listener(text);
    } catch {
      // a listener's failure must not break the shell
    }
  }
}
