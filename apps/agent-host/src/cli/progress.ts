/** Where progress is written: a stream with `write`, and `isTTY` when it is a terminal. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** Formats a duration for people: `12 ms`, `1.4 s`, `2 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A step being shown: `update` changes its detail text (e.g. the runtime's status). */
export interface StepHandle {
  update(detail: string): void;
}

/**
 * Progress for long steps: a spinner with elapsed time on a terminal, plain `... <step>` and
 * `ok <step> (<time>)` lines otherwise (CI logs, pipes), so output never holds control characters there.
 */
export class Progress {
  readonly #out: ProgressStream;
  readonly #tty: boolean;
  readonly #color: boolean;

  /** `tty` defaults to `out.isTTY`; `color` (terminal only) to "NO_COLOR is not set". */
  constructor(out: ProgressStream, options: { tty?: boolean; color?: boolean } = {}) {
    this.#out = out;
    this.#tty = options.tty ?? out.isTTY === true;
    this.#color = this.#tty && (options.color ?? !process.env.NO_COLOR);
  }

  #paint(code: string, text: string): string {
    return this.#color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  /** True when spinners are drawn. */
  get interactive(): boolean {
    return this.#tty;
  }

  /** Writes one line. */
  line(text = ""): void {
    this.#out.write(`${text}\n`);
  }

  /** Runs `fn` as a named step, showing progress; returns its result and duration. Failures are shown and re-thrown. */
  async step<T>(
    label: string,
    fn: (step: StepHandle) => Promise<T>,
  ): Promise<{ value: T; durationMs: number }> {
    const started = performance.now();
    let detail = "";
    let timer: NodeJS.Timeout | undefined;
    let frame = 0;
    const draw = () => {
      const elapsed = formatDuration(performance.now() - started);
      this.#out.write(
        `\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${label} ${elapsed}${detail ? `  ${detail}` : ""}`,
      );
    };
    if (this.#tty) {
      draw();
      timer = setInterval(draw, 80);
    } else {
      this.line(`... ${label}`);
    }
    const handle: StepHandle = {
      update: (text) => {
        if (text === detail) return;
        detail = text;
        if (this.#tty) draw();
        else this.line(`    ${text}`);
      },
    };
    try {
      const value = await fn(handle);
      const durationMs = performance.now() - started;
      if (timer) clearInterval(timer);
      if (this.#tty)
        this.#out.write(
          `\r\x1b[2K${this.#paint("32", "✔")} ${label} ${this.#paint("2", `(${formatDuration(durationMs)})`)}\n`,
        );
      else this.line(`ok  ${label} (${formatDuration(durationMs)})`);
      return { value, durationMs };
    } catch (err) {
      const durationMs = performance.now() - started;
      if (timer) clearInterval(timer);
      if (this.#tty)
        this.#out.write(
          `\r\x1b[2K${this.#paint("31", "✖")} ${label} ${this.#paint("2", `(${formatDuration(durationMs)})`)}\n`,
        );
      else this.line(`FAIL ${label} (${formatDuration(durationMs)})`);
      throw err;
    }
  }
}
