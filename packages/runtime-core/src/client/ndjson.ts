import { StringDecoder } from "node:string_decoder";
import { RuntimeError } from "../errors.js";
import type { Logger } from "../logger.js";
import { mapActionServerFailure } from "./failures.js";
import { exchange, type HttpCallOptions, type HttpResponse, TransportError } from "./http.js";

/** The media type of the streaming form of `POST /execute_action` (newline-delimited JSON). */
export const NDJSON_MEDIA_TYPE = "application/x-ndjson";

/** Options of {@link httpCallLines}. */
export interface HttpCallLinesOptions extends HttpCallOptions {
  /** Receives each line of an `application/x-ndjson` 2xx answer, parsed, as it arrives. */
  onLine: (value: unknown) => void;
}

/** The result of {@link httpCallLines}: `streamed` when the lines went to `onLine` (then `body` is empty). */
export interface HttpLinesResponse extends HttpResponse {
  streamed: boolean;
}

/**
 * Performs one request like `httpCall`, except that a 2xx answer of type `application/x-ndjson` is not
 * collected: each line is parsed and handed to `onLine` the moment it is complete. Any other answer (an
 * error status, or a server that ignores `Accept` and answers plain JSON, as OpenHands' own server does) is
 * collected as `body` with `streamed: false`. `timeoutMs` is a whole-exchange deadline as for `httpCall`;
 * `maxBodyBytes` bounds one line (or a collected body). A line that is not JSON is a protocol error.
 */
export function httpCallLines(opts: HttpCallLinesOptions): Promise<HttpLinesResponse> {
  const maxBytes = opts.maxBodyBytes ?? 512 * 1024 * 1024;
  return exchange<HttpLinesResponse>(opts, (res, req, finish, settled) => {
    const status = res.statusCode ?? 0;
    const type = String(res.headers["content-type"] ?? "").toLowerCase();
    const streamed = status >= 200 && status < 300 && type.startsWith(NDJSON_MEDIA_TYPE);
    const chunks: Buffer[] = [];
    let size = 0;
    const decoder = new StringDecoder("utf8");
    let pending = "";
    const takeLine = (line: string): boolean => {
      if (line.trim() === "") return true;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        req.destroy();
        finish(new TransportError("protocol", "A line of the streamed answer is not JSON"));
        return false;
      }
      opts.onLine(value);
      return true;
    };
    res.on("data", (chunk: Buffer) => {
      if (settled()) return;
      if (!streamed) {
        size += chunk.length;
        if (size > maxBytes) {
          req.destroy();
          finish(new TransportError("other", `Response body exceeds ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
        return;
      }
      pending += decoder.write(chunk);
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!takeLine(line)) return;
      }
      if (pending.length > maxBytes) {
        req.destroy();
        finish(new TransportError("other", `A line of the streamed answer exceeds ${maxBytes} bytes`));
      }
    });
    res.on("end", () => {
      if (streamed && !takeLine(pending + decoder.end())) return;
      finish(null, { status, headers: res.headers, body: Buffer.concat(chunks), streamed });
    });
  });
}

/**
 * The lines of one streamed `execute_action` answer: `output` lines go to the listener, the `observation`
 * line is kept (parsed once by the caller), an `error` line becomes the mapped error. Unknown line types are
 * ignored, so a newer server can add some.
 */
export class StreamedAnswer {
  #observation: unknown;
  #failure: { status: number; body: Buffer } | undefined;
  #listenerFailed = false;

  constructor(
    private readonly onOutput: (text: string) => void,
    private readonly logger: Logger,
  ) {}

  take(line: unknown): void {
    if (typeof line !== "object" || line === null) return;
    const l = line as { type?: unknown; content?: unknown; observation?: unknown; status?: unknown };
    if (l.type === "output" && typeof l.content === "string") {
      try {
        this.onOutput(l.content);
      } catch (err) {
        if (!this.#listenerFailed)
          this.logger.warn("an onOutput listener threw; its further errors are ignored", {
            error: err instanceof Error ? err.name : typeof err,
          });
        this.#listenerFailed = true;
      }
    } else if (l.type === "observation") this.#observation = l.observation;
    else if (l.type === "error") {
      const { type: _type, status, ...body } = l as Record<string, unknown>;
      this.#failure = {
        status: typeof status === "number" ? status : 500,
        body: Buffer.from(JSON.stringify(body)),
      };
    }
  }

  /** The observation's JSON; throws the streamed error, or DISCONNECTED when the stream ended without one. */
  result(context: { endpoint: string; ready: boolean; timeoutMs: number }): unknown {
    if (this.#failure) throw mapActionServerFailure(this.#failure, context);
    if (this.#observation === undefined || this.#observation === null) {
      throw new RuntimeError(
        "DISCONNECTED",
        `action server ${context.endpoint} ended its streamed answer before the observation. The sandbox may have stopped; reconnect or create a new runtime.`,
      );
    }
    return this.#observation;
  }
}
