import type { IncomingMessage } from "node:http";
import { HttpError, invalidRequest } from "./http-error.js";

/**
 * Reads a JSON body of at most `maxBytes` (413 beyond). An empty body is `undefined`; malformed JSON is 422.
 * On 413 the rest of the body is left unread (paused, never destroyed), so the caller can drain it and the
 * client still sees the answer.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const body = await new Promise<Buffer>((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.pause();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolvePromise(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new HttpError(400, `The request body could not be read: ${err.message}`));
    };
    const onClose = () => {
      if (req.complete) return;
      cleanup();
      reject(new HttpError(400, "The request was aborted by the client before its body ended"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
  } catch (err) {
    throw invalidRequest([`body: not valid JSON (${err instanceof Error ? err.message : String(err)})`]);
  }
}

/** How long {@link drainBody} reads an unwanted body at most before giving up on it. */
export const DRAIN_TIMEOUT_MS = 30_000;

/**
 * Reads and discards what is left of a request body, up to `maxBytes` and {@link DRAIN_TIMEOUT_MS}, so an
 * early answer (400, 403, 413...) reaches clients that only read the answer once their body is sent (Node's
 * fetch gets EPIPE otherwise). Resolves true when the body was read to its end, false when it was cut short
 * (then the caller closes the connection after answering).
 */
export function drainBody(req: IncomingMessage, maxBytes: number): Promise<boolean> {
  if (req.readableEnded) return Promise.resolve(true);
  if (req.destroyed) return Promise.resolve(false);
  return new Promise((resolvePromise) => {
    let seen = 0;
    const done = (complete: boolean) => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      req.off("error", onError);
      if (!complete) req.pause();
      resolvePromise(complete);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) done(false);
    };
    const onEnd = () => done(true);
    const onClose = () => done(req.complete);
    const onError = () => done(false);
    const timer = setTimeout(() => done(false), DRAIN_TIMEOUT_MS);
    timer.unref();
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("close", onClose);
    req.on("error", onError);
    req.resume();
  });
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    `Request body too large: the limit is ${maxBytes} bytes (maxJsonBodyBytes; env ACTION_SERVER_MAX_JSON_BODY_BYTES on the server raises it).`,
  );
}
