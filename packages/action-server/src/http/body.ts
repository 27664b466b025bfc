import type { IncomingMessage } from "node:http";
import { HttpError, invalidRequest } from "./http-error.js";

/** Reads a JSON body of at most `maxBytes` (413 beyond). An empty body is `undefined`; malformed JSON is 422. */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks, size).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw invalidRequest([`body: not valid JSON (${err instanceof Error ? err.message : String(err)})`]);
  }
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, `Request body too large: the limit is ${maxBytes} bytes.`);
}
