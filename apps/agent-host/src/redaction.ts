import {
  type Logger,
  noopRedactor,
  type RedactionStream,
  type Redactor,
  type Runtime,
  redactingLogger,
  redactionStream,
} from "@agent-runtime/runtime-core";

/** Applies each redactor in turn; empty ones are skipped. */
export function combineRedactors(...redactors: (Redactor | undefined)[]): Redactor {
  const active = redactors.filter((r): r is Redactor => r !== undefined);
  if (active.length === 0) return noopRedactor;
  if (active.length === 1) return active[0]!;
  return {
    get isEmpty() {
      return active.every((r) => r.isEmpty);
    },
    redact: (text) => active.reduce((t, r) => (r.isEmpty ? t : r.redact(t)), text),
    redactDeep: <T>(value: T): T => active.reduce((v, r) => (r.isEmpty ? v : r.redactDeep(v)), value),
    createStream: () => chainStreams(active.map(redactionStream)),
  };
}

/** Each stream's output fed to the next. */
function chainStreams(streams: RedactionStream[]): RedactionStream {
  return {
    write: (chunk) => streams.reduce((text, s) => s.write(text), chunk),
    // Each stream gets what the ones before it released, then releases the rest.
    flush: () => streams.reduce((carry, s) => s.write(carry) + s.flush(), ""),
  };
}

function isRedactor(value: unknown): value is Redactor {
  const v = value as Partial<Redactor> | null | undefined;
  return typeof v?.redact === "function" && typeof v.redactDeep === "function";
}

/**
 * The redactor a runtime applies to its observations (runtime-core's `BaseRuntime.redactor`: the context's
 * redactor combined with the sandbox's secrets once they are resolved), read at each call so that it follows
 * the runtime; undefined when the runtime does not expose one.
 */
export function runtimeRedactor(runtime: Runtime): Redactor | undefined {
  const current = () => (runtime as { redactor?: unknown }).redactor;
  if (!isRedactor(current())) return undefined;
  const get = (): Redactor => {
    const r = current();
    return isRedactor(r) ? r : noopRedactor;
  };
  return {
    get isEmpty() {
      return get().isEmpty;
    },
    redact: (text) => get().redact(text),
    redactDeep: (value) => get().redactDeep(value),
    createStream: () => redactionStream(get()),
  };
}

/**
 * A redactor that forwards to another one set later ({@link DelegatingRedactor.use}); the identity until then.
 * Plugins created before the secrets plugin get it in their context and log through it.
 */
export class DelegatingRedactor implements Redactor {
  #target: Redactor = noopRedactor;

  /** Forwards to `target` from now on. */
  use(target: Redactor): void {
    this.#target = target;
  }

  get isEmpty(): boolean {
    return this.#target.isEmpty;
  }

  redact(text: string): string {
    return this.#target.redact(text);
  }

  redactDeep<T>(value: T): T {
    return this.#target.redactDeep(value);
  }

  /** The target's stream (live output), so a split secret is caught as the target would catch it. */
  createStream(): RedactionStream {
    return redactionStream(this.#target);
  }
}

/**
 * The secrets of every open session, as one redactor: the host's logs go through it, so a value one session
 * knows never reaches a log line, whichever session the line is about.
 */
export class HostRedactor implements Redactor {
  readonly #bySession = new Map<string, Redactor>();

  /** Registers (or replaces) the redactor of a session. */
  set(sessionId: string, redactor: Redactor): void {
    this.#bySession.set(sessionId, redactor);
  }

  /** Forgets a session's redactor (the session is closed). */
  delete(sessionId: string): void {
    this.#bySession.delete(sessionId);
  }

  get isEmpty(): boolean {
    for (const r of this.#bySession.values()) if (!r.isEmpty) return false;
    return true;
  }

  redact(text: string): string {
    let out = text;
    for (const r of this.#bySession.values()) if (!r.isEmpty) out = r.redact(out);
    return out;
  }

  redactDeep<T>(value: T): T {
    let out = value;
    for (const r of this.#bySession.values()) if (!r.isEmpty) out = r.redactDeep(out);
    return out;
  }
}

/** `logger` with every message and field passed through `redactor` first. */
export function redactedLogger(logger: Logger, redactor: Redactor): Logger {
  return redactingLogger(logger, (value) =>
    redactor.isEmpty
      ? value
      : typeof value === "string"
        ? redactor.redact(value)
        : redactor.redactDeep(value),
  );
}
