import type { IncomingMessage, ServerResponse } from "node:http";
import type { Action, Logger } from "@agent-runtime/runtime-core";
import type { ActionExecutor } from "../actions/executor.js";
import { toHttpError } from "./http-error.js";

/** The media type that asks `POST /execute_action` for the streaming form. */
export const NDJSON_MEDIA_TYPE = "application/x-ndjson";

/**
 * Output held in the response's buffer (a client reading slower than the command prints) above which live
 * chunks are skipped rather than queued: memory stays bounded whatever the output's size. The observation,
 * which carries the output (cut as documented), is never skipped.
 */
export const MAX_BUFFERED_STREAM_BYTES = 1024 * 1024;

/** True when the request asks for the streaming form: its `Accept` header names {@link NDJSON_MEDIA_TYPE}. */
export function wantsStream(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  if (!accept) return false;
  return accept
    .toLowerCase()
    .split(",")
    .some((part) => part.split(";")[0]?.trim() === NDJSON_MEDIA_TYPE);
}

/**
 * The streaming form of `execute_action`: newline-delimited JSON, one `{"type":"output","content":...}` line
 * per piece of output as the command prints it (written at once, never held for more), then
 * `{"type":"observation","observation":{...}}` (exactly what the plain form answers), then the end. A failure
 * after the headers went out (they go out at once) is a last line `{"type":"error","status":N,"detail":...}`.
 *
 * A client that goes away mid-stream changes nothing for the action: it runs on (the executor's queue is not
 * held by the connection) and its observation is dropped, as when a plain request's client disconnects; the
 * next action finds the shell as OpenHands would (a command still running is "the previous command").
 */
export async function streamAction(
  req: IncomingMessage,
  res: ServerResponse,
  executor: ActionExecutor,
  action: Action,
  logger: Logger,
): Promise<void> {
  req.socket.setNoDelay(true);
  res.writeHead(200, {
    "content-type": `${NDJSON_MEDIA_TYPE}; charset=utf-8`,
    "cache-control": "no-cache, no-transform",
    // Reverse proxies (nginx and those that honour it) must pass each line on, not buffer the response.
    "x-accel-buffering": "no",
  });
  res.flushHeaders();
  let gone = false;
  res.once("close", () => {
    if (!res.writableFinished) gone = true;
  });
  let skippedChars = 0;
  const writeLine = (value: unknown) => {
    if (gone || res.destroyed) return;
    res.write(`${JSON.stringify(value)}\n`);
  };
  const onOutput = (text: string) => {
    if (gone || res.destroyed) return;
    if (res.writableLength > MAX_BUFFERED_STREAM_BYTES) {
      skippedChars += text.length;
      return;
    }
    let content = text;
    if (skippedChars > 0) {
      content = skippedNote(skippedChars) + text;
      skippedChars = 0;
    }
    writeLine({ type: "output", content });
  };
  try {
    const observation = await executor.execute(action, { onOutput });
    if (skippedChars > 0) writeLine({ type: "output", content: skippedNote(skippedChars) });
    writeLine({ type: "observation", observation });
  } catch (err) {
    const httpError = toHttpError(err);
    if (httpError.status >= 500)
      logger.error("streamed action failed", { path: "/execute_action", error: httpError.message });
    writeLine({ type: "error", status: httpError.status, ...httpError.body() });
  }
  if (!gone && !res.destroyed) res.end();
}

function skippedNote(chars: number): string {
  return `\n[... ${chars} characters of live output skipped: the client read too slowly; the observation has the output ...]\n`;
}
