import { Transform } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { SecretRedactor } from "./redactor.js";

/**
 * A byte stream that redacts UTF-8 text flowing through it (a sandbox's stdout, say). Multi-byte
 * characters and secrets split across chunks are handled; at most `maxPatternLength - 1` characters are
 * held until the next chunk or the end.
 *
 * @example
 * ```ts
 * child.stdout.pipe(redactingTransform(secrets.redactor)).pipe(process.stdout);
 * ```
 */
export function redactingTransform(redactor: SecretRedactor): Transform {
  const decoder = new StringDecoder("utf8");
  const stream = redactor.createStream();
  return new Transform({
    transform(chunk: Buffer | string, _encoding, callback) {
      const text = typeof chunk === "string" ? chunk : decoder.write(chunk);
      const out = stream.write(text);
      callback(null, out.length ? Buffer.from(out, "utf8") : undefined);
    },
    flush(callback) {
      const out = stream.write(decoder.end()) + stream.flush();
      callback(null, out.length ? Buffer.from(out, "utf8") : undefined);
    },
  });
}
