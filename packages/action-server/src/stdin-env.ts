import { InvalidArgumentError } from "@agent-runtime/runtime-core";

/** The flag that makes the bin read environment variables (secrets, `SESSION_API_KEY`) from stdin before it starts. */
export const ENV_FROM_STDIN_FLAG = "--env-from-stdin";
/** At most this many bytes of stdin are read for `--env-from-stdin`. */
export const MAX_STDIN_ENV_BYTES = 1024 * 1024;
/** `--env-from-stdin` gives up when stdin has not ended by then. */
export const STDIN_ENV_TIMEOUT_MS = 30_000;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses what a launcher wrote to stdin for `--env-from-stdin`: one JSON object of names to string values. Errors
 * name the variable but never show a value (they are secrets).
 */
export function parseStdinEnv(text: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(
      `${ENV_FROM_STDIN_FLAG}: stdin is not JSON (${text.length} characters); write one object such as {"NAME":"value"}, then close stdin`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidArgumentError(
      `${ENV_FROM_STDIN_FLAG}: stdin holds JSON ${value === null ? "null" : Array.isArray(value) ? "array" : typeof value}, not an object of names to strings`,
    );
  }
  const issues: string[] = [];
  const env: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (!NAME.test(name)) issues.push(`${JSON.stringify(name)}: not a variable name (letters, digits, _)`);
    else if (typeof v !== "string") issues.push(`${name}: expected a string, got ${typeof v}`);
    else if (v.includes("\0")) issues.push(`${name}: contains a NUL character`);
    else env[name] = v;
  }
  if (issues.length > 0) {
    throw new InvalidArgumentError(`${ENV_FROM_STDIN_FLAG}:\n  ${issues.join("\n  ")}`, issues);
  }
  return env;
}

/**
 * Reads stdin to its end (at most {@link MAX_STDIN_ENV_BYTES}, within `timeoutMs`) and parses it with
 * {@link parseStdinEnv}. Used by launchers that must not put secrets where others read them: a container's
 * environment is stored by the engine and shown by `docker inspect`; stdin is not.
 */
export function readStdinEnv(
  input: NodeJS.ReadableStream,
  timeoutMs = STDIN_ENV_TIMEOUT_MS,
): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: Error | undefined, env?: Record<string, string>) => {
      clearTimeout(timer);
      input.removeListener("data", onData);
      input.removeListener("end", onEnd);
      input.removeListener("error", onError);
      input.pause();
      if (err) reject(err);
      else resolve(env as Record<string, string>);
    };
    const onData = (chunk: Buffer | string) => {
      const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      size += b.length;
      if (size > MAX_STDIN_ENV_BYTES) {
        done(
          new InvalidArgumentError(
            `${ENV_FROM_STDIN_FLAG}: stdin is over ${MAX_STDIN_ENV_BYTES} bytes; pass large values as files`,
          ),
        );
        return;
      }
      chunks.push(b);
    };
    const onEnd = () => {
      try {
        done(undefined, parseStdinEnv(Buffer.concat(chunks).toString("utf8")));
      } catch (err) {
        done(err as Error);
      }
    };
    const onError = (err: Error) =>
      done(new InvalidArgumentError(`${ENV_FROM_STDIN_FLAG}: reading stdin failed: ${err.message}`));
    const timer = setTimeout(
      () =>
        done(
          new InvalidArgumentError(
            `${ENV_FROM_STDIN_FLAG}: stdin did not end within ${timeoutMs} ms; the launcher must write the JSON object and close stdin`,
          ),
        ),
      timeoutMs,
    );
    timer.unref();
    input.on("data", onData);
    input.once("end", onEnd);
    input.once("error", onError);
    input.resume();
  });
}
