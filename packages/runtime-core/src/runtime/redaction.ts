import type { RedactionStream, Redactor } from "../context.js";
import { RuntimeError, toRuntimeError } from "../errors.js";

/** A redactor that applies `a`, then `b` (the host's, then the sandbox's secrets). */
export function combineRedactors(a: Redactor, b: Redactor | undefined): Redactor {
  if (!b || b.isEmpty) return a;
  if (a.isEmpty) return b;
  return {
    isEmpty: false,
    redact: (t) => b.redact(a.redact(t)),
    redactDeep: (v) => b.redactDeep(a.redactDeep(v)),
    createStream: () => chainStreams(redactionStream(a), redactionStream(b)),
  };
}

/** `err` as a RuntimeError whose message and details hold no secret `redactor` knows. */
export function redactError(err: unknown, redactor: Redactor): RuntimeError {
  const e = toRuntimeError(err);
  const message = redactor.redact(e.message);
  if (message === e.message) return e;
  return new RuntimeError(e.code, message, {
    ...(e.details ? { details: redactor.redactDeep(e.details) } : {}),
  });
}

/**
 * A partial line longer than this is emitted by the line fallback of {@link redactionStream}, all but its
 * last {@link LINE_FALLBACK_TAIL_CHARS} characters, so one endless line cannot grow memory without bound.
 */
export const LINE_FALLBACK_MAX_CHARS = 64 * 1024;
/** What the line fallback keeps of an over-long partial line. */
export const LINE_FALLBACK_TAIL_CHARS = 4096;

/**
 * Redaction of a chunked text (live command output) with `redactor`, so that a secret split across chunks is
 * still caught: the redactor's own {@link Redactor.createStream} when it has one (`@agent-runtime/secrets`
 * holds back the longest secret's length), the identity when it knows no secret, and otherwise whole lines
 * (text after the last line break waits for the next one, or for `flush`). The line fallback cannot catch a
 * secret that spans a line break, or one cut by its {@link LINE_FALLBACK_MAX_CHARS} bound.
 *
 * @example
 * ```ts
 * const stream = redactionStream(runtime.redactor);
 * onChunk = (text) => print(stream.write(text));
 * onEnd = () => print(stream.flush());
 * ```
 */
export function redactionStream(redactor: Redactor): RedactionStream {
  if (redactor.createStream) return redactor.createStream();
  if (redactor.isEmpty) return { write: (chunk) => chunk, flush: () => "" };
  let held = "";
  return {
    write(chunk) {
      const text = held + chunk;
      const cut = text.lastIndexOf("\n") + 1;
      let out = "";
      if (cut > 0) {
        out = redactor.redact(text.slice(0, cut));
        held = text.slice(cut);
      } else held = text;
      if (held.length > LINE_FALLBACK_MAX_CHARS) {
        out += redactor.redact(held.slice(0, held.length - LINE_FALLBACK_TAIL_CHARS));
        held = held.slice(held.length - LINE_FALLBACK_TAIL_CHARS);
      }
      return out;
    },
    flush() {
      const rest = held;
      held = "";
      return rest ? redactor.redact(rest) : "";
    },
  };
}

/** `first`'s output fed through `second`. */
function chainStreams(first: RedactionStream, second: RedactionStream): RedactionStream {
  return {
    write: (chunk) => second.write(first.write(chunk)),
    flush: () => second.write(first.flush()) + second.flush(),
  };
}
