import type { ProgressStream } from "./progress.js";

/**
 * Prints a command's output as it arrives (`agent-host run --follow`), each line behind `prefix` like the
 * observations `run` prints, whatever the pieces' boundaries. `end` closes a last line left open.
 */
export class FollowPrinter {
  readonly #out: ProgressStream;
  readonly #prefix: string;
  #atLineStart = true;
  #printed = false;

  constructor(out: ProgressStream, prefix = "    | ") {
    this.#out = out;
    this.#prefix = prefix;
  }

  /** True once some output was printed. */
  get printed(): boolean {
    return this.#printed;
  }

  /** Prints a piece of output. */
  write(text: string): void {
    if (!text) return;
    this.#printed = true;
    let out = "";
    for (const part of text.split(/(?<=\n)/)) {
      if (this.#atLineStart) out += this.#prefix;
      out += part;
      this.#atLineStart = part.endsWith("\n");
    }
    this.#out.write(out);
  }

  /** Ends the last line when the output did not. */
  end(): void {
    if (!this.#atLineStart) this.#out.write("\n");
    this.#atLineStart = true;
  }
}
