import type { Agent as HttpAgent } from "node:http";
import type { Agent as HttpsAgent } from "node:https";
import type { Writable } from "node:stream";
import { RuntimeError } from "../errors.js";
import { type Logger, quietLogger } from "../logger.js";
import type { Action } from "../protocol/actions.js";
import { parseObservation, serializeAction } from "../protocol/codec.js";
import type { Observation } from "../protocol/observations.js";
import { mapActionServerFailure } from "./failures.js";
import {
  createAgent,
  type HttpResponse,
  type HttpStreamResult,
  httpCall,
  httpStreamTo,
  multipartFile,
  TransportError,
} from "./http.js";
import { type HttpLinesResponse, httpCallLines, NDJSON_MEDIA_TYPE, StreamedAnswer } from "./ndjson.js";
import type { ActionExecutionClientOptions, McpStdioServer, RetryPolicy, ServerInfo } from "./options.js";
import { SerialQueue } from "./queue.js";
import { pollUntilAlive, sleep, type WaitUntilAliveOptions } from "./readiness.js";

export { mapActionServerFailure } from "./failures.js";
export type { ActionExecutionClientOptions, McpStdioServer, RetryPolicy, ServerInfo } from "./options.js";
export type { WaitUntilAliveOptions } from "./readiness.js";

/**
 * The host-side HTTP client of the action server (OpenHands V0 protocol): every endpoint, the
 * `X-Session-API-Key` header, one action in flight (later calls queue in order), HTTP deadline = action
 * timeout + 5 s, bounded retries with back-off for protocol errors and 429, readiness by deadline.
 *
 * @example
 * ```ts
 * const client = new ActionExecutionClient({ baseUrl: "http://127.0.0.1:3000", sessionApiKey: key });
 * await client.waitUntilAlive({ deadlineMs: 30_000 });
 * const obs = await client.executeAction(cmdRun("echo hi"));
 * ```
 */
export class ActionExecutionClient {
  readonly baseUrl: URL;
  readonly #key: string | undefined;
  readonly #socketPath: string | undefined;
  readonly #agent: HttpAgent | HttpsAgent;
  readonly #queue = new SerialQueue();
  readonly #retry: RetryPolicy;
  readonly #logger: Logger;
  readonly #defaultActionTimeoutMs: number;
  readonly #graceMs: number;
  readonly #idleSocketMs: number;
  #idleTimer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #ready = false;

  constructor(options: ActionExecutionClientOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch (cause) {
      throw new RuntimeError("INVALID_ARGUMENT", `baseUrl: not a URL (${JSON.stringify(options.baseUrl)})`, {
        cause,
      });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `baseUrl: expected http:// or https://, got ${url.protocol}`,
      );
    }
    this.baseUrl = url;
    this.#key = options.sessionApiKey;
    this.#socketPath = options.socketPath;
    this.#agent = createAgent(url, options.caCertPem);
    this.#retry = { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 5000, ...options.retry };
    this.#logger = options.logger ?? quietLogger;
    this.#defaultActionTimeoutMs = options.defaultActionTimeoutMs ?? 120_000;
    this.#graceMs = options.httpGraceMs ?? 5000;
    this.#idleSocketMs = options.idleSocketTimeoutMs ?? 5000;
  }

  /** Tracks requests in flight; once none is left for `idleSocketTimeoutMs`, pooled sockets are closed. */
  async #tracked<T>(fn: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    clearTimeout(this.#idleTimer);
    try {
      return await fn();
    } finally {
      if (--this.#inFlight === 0) {
        this.#idleTimer = setTimeout(() => {
          if (this.#inFlight === 0) this.#agent.destroy();
        }, this.#idleSocketMs);
        this.#idleTimer.unref();
      }
    }
  }

  /** True once the server answered `/alive` with `ok` (refusals then map to DISCONNECTED). */
  get ready(): boolean {
    return this.#ready;
  }

  /** Number of actions queued or in flight. */
  get pendingActions(): number {
    return this.#queue.pending;
  }

  // JSON.stringify / inspect must never show the key.
  toJSON(): Record<string, unknown> {
    return { baseUrl: this.baseUrl.toString(), sessionApiKey: this.#key ? "[redacted]" : undefined };
  }

  #headers(extra?: Record<string, string>): Record<string, string> {
    return { accept: "application/json", ...(this.#key ? { "x-session-api-key": this.#key } : {}), ...extra };
  }

  #url(path: string, query?: Record<string, string>): URL {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    return url;
  }

  /** One request with bounded retries (429 and protocol errors); non-2xx becomes a mapped RuntimeError. */
  async #send(
    endpoint: string,
    init: {
      method: "GET" | "POST";
      body?: Buffer | string;
      contentType?: string;
      query?: Record<string, string>;
      timeoutMs: number;
      signal?: AbortSignal;
      retryProtocol?: boolean;
      /** Asks for the streaming form (Accept: application/x-ndjson) and receives its lines. */
      onLine?: (value: unknown) => void;
    },
  ): Promise<HttpResponse & Partial<Pick<HttpLinesResponse, "streamed">>> {
    const ctx = { endpoint, ready: this.#ready, timeoutMs: init.timeoutMs };
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse & Partial<Pick<HttpLinesResponse, "streamed">>;
      try {
        const call = {
          method: init.method,
          url: this.#url(endpoint, init.query),
          headers: this.#headers({
            ...(init.contentType ? { "content-type": init.contentType } : {}),
            // A server without the streaming form (OpenHands' own) ignores this and answers plain JSON.
            ...(init.onLine ? { accept: `${NDJSON_MEDIA_TYPE}, application/json` } : {}),
          }),
          ...(init.body !== undefined ? { body: init.body } : {}),
          timeoutMs: init.timeoutMs,
          agent: this.#agent,
          ...(this.#socketPath ? { socketPath: this.#socketPath } : {}),
          ...(init.signal ? { signal: init.signal } : {}),
        };
        const onLine = init.onLine;
        res = await this.#tracked(() => (onLine ? httpCallLines({ ...call, onLine }) : httpCall(call)));
      } catch (err) {
        if (!(err instanceof TransportError)) throw err;
        const retryable = err.kind === "protocol" && init.retryProtocol !== false;
        if (retryable && attempt < this.#retry.maxAttempts) {
          await this.#backoff(attempt, endpoint, err.kind, init.signal);
          continue;
        }
        throw mapActionServerFailure(err, ctx);
      }
      if (res.status >= 200 && res.status < 300) return res;
      if (res.status === 429 && attempt < this.#retry.maxAttempts) {
        const retryAfter = Number(res.headers["retry-after"]);
        await this.#backoff(
          attempt,
          endpoint,
          "429",
          init.signal,
          Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined,
        );
        continue;
      }
      throw mapActionServerFailure(res, ctx);
    }
  }

  async #backoff(attempt: number, endpoint: string, reason: string, signal?: AbortSignal, hintMs?: number) {
    const exp = Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempt - 1));
    const delay =
      hintMs !== undefined ? Math.min(this.#retry.maxDelayMs, hintMs) : exp / 2 + Math.random() * (exp / 2);
    this.#logger.debug("action server request retried", {
      endpoint,
      attempt,
      reason,
      delayMs: Math.round(delay),
    });
    await sleep(delay, signal);
  }

  #json<T>(res: HttpResponse, endpoint: string): T {
    try {
      return JSON.parse(res.body.toString("utf8")) as T;
    } catch (cause) {
      throw new RuntimeError("INTERNAL", `action server ${endpoint} returned a body that is not JSON`, {
        cause,
      });
    }
  }

  /** `GET /alive` once: `"ok"`, `"not initialized"`, or a thrown mapped error. */
  async alive(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
    const res = await this.#send("/alive", {
      method: "GET",
      timeoutMs: options.timeoutMs ?? 5000,
      retryProtocol: false,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const body = this.#json<{ status?: string }>(res, "/alive");
    return body.status ?? "ok";
  }

  /**
   * Polls `/alive` until it answers `{"status":"ok"}` or the deadline passes. Refused or reset connections,
   * protocol errors, 502/503/504 and `not initialized` all mean "not ready yet". Throws TIMEOUT with the
   * last reason, CANCELLED on abort, UNAUTHORIZED at once on 401/403, DISCONNECTED once `isDead` says so.
   */
  async waitUntilAlive(options: WaitUntilAliveOptions): Promise<void> {
    const probe = (timeoutMs: number) =>
      this.#tracked(() =>
        httpCall({
          method: "GET",
          url: this.#url("/alive"),
          headers: this.#headers(),
          timeoutMs,
          agent: this.#agent,
          ...(this.#socketPath ? { socketPath: this.#socketPath } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        }),
      );
    await pollUntilAlive(probe, this.baseUrl.origin, options);
    this.#ready = true;
  }

  /**
   * `POST /execute_action`. Queued: one action in flight, later calls wait in order (the runtime side's one
   * queue). Actions without a timeout get the default hard timeout (non-blocking), as OpenHands does. The HTTP
   * deadline is timeout + 5 s. `action` is sent as given, without a second parse: pass a typed action (from a
   * builder or `parseAction`); the server validates what it receives (400, INVALID_ARGUMENT here). The
   * observation is parsed once, here, where it enters the host.
   *
   * With `onOutput`, the streaming form is asked for (`Accept: application/x-ndjson`): `onOutput` gets each
   * piece of a `run` action's output as the server sends it (raw: not redacted here; `Runtime.run` redacts),
   * and the promise resolves with the final observation as without it. A server that has no streaming form
   * answers plain JSON: then `onOutput` is never called. An exception thrown by `onOutput` is logged and
   * ignored.
   */
  executeAction(
    action: Action,
    options: { signal?: AbortSignal; onOutput?: (text: string) => void } = {},
  ): Promise<Observation> {
    const timeoutSeconds = action.timeout ?? this.#defaultActionTimeoutMs / 1000;
    const wire = serializeAction(action);
    wire.timeout = timeoutSeconds;
    const body = JSON.stringify({ action: wire });
    const timeoutMs = timeoutSeconds * 1000 + this.#graceMs;
    const endpoint = "/execute_action";
    const { onOutput } = options;
    const stream = onOutput ? new StreamedAnswer(onOutput, this.#logger) : undefined;
    return this.#queue.run(async () => {
      // Actions are not idempotent: never resend after a protocol error.
      const res = await this.#send(endpoint, {
        method: "POST",
        body,
        contentType: "application/json",
        timeoutMs,
        retryProtocol: false,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(stream ? { onLine: (line: unknown) => stream.take(line) } : {}),
      });
      if (!stream || !res.streamed) return parseObservation(this.#json(res, endpoint));
      return parseObservation(stream.result({ endpoint, ready: this.#ready, timeoutMs }));
    });
  }

  /** `POST /list_files`: directories first with a trailing `/`. No path: the server's initial working dir. */
  async listFiles(path?: string): Promise<string[]> {
    const res = await this.#send("/list_files", {
      method: "POST",
      body: JSON.stringify(path === undefined ? {} : { path }),
      contentType: "application/json",
      timeoutMs: 10_000,
    });
    return this.#json<string[]>(res, "/list_files");
  }

  /** `POST /upload_file`: sends `content` as `filename`; a zip with `recursive` is extracted at `destination`. */
  async uploadFile(
    content: Buffer,
    filename: string,
    destination: string,
    recursive: boolean,
  ): Promise<void> {
    const { body, contentType } = multipartFile("file", filename, content);
    await this.#send("/upload_file", {
      method: "POST",
      body,
      contentType,
      query: { destination, recursive: String(recursive) },
      timeoutMs: 300_000,
    });
  }

  /** `GET /download_files`: a zip of `path` (entries relative to it). */
  async downloadFiles(path: string): Promise<Uint8Array> {
    const res = await this.#send("/download_files", { method: "GET", query: { path }, timeoutMs: 300_000 });
    return new Uint8Array(res.body.buffer, res.body.byteOffset, res.body.byteLength);
  }

  /**
   * `GET /download_files`, streamed: the zip of `path` is piped into `sink` as it arrives (bounded memory, with
   * backpressure), and `sink` is ended when the zip is complete. Never retried (bytes may already be written).
   * On failure `sink` is destroyed and the error is mapped like every other call (NOT_FOUND, DISCONNECTED...).
   * `idleTimeoutMs` is the longest wait for the next byte. Resolves with the number of bytes streamed.
   */
  async downloadFilesTo(
    path: string,
    sink: Writable,
    options: { signal?: AbortSignal; idleTimeoutMs?: number } = {},
  ): Promise<number> {
    const endpoint = "/download_files";
    const timeoutMs = options.idleTimeoutMs ?? 300_000;
    const ctx = { endpoint, ready: this.#ready, timeoutMs };
    let result: HttpStreamResult;
    try {
      result = await this.#tracked(() =>
        httpStreamTo({
          method: "GET",
          url: this.#url(endpoint, { path }),
          headers: this.#headers({ accept: "application/zip, application/json" }),
          timeoutMs,
          agent: this.#agent,
          sink,
          ...(this.#socketPath ? { socketPath: this.#socketPath } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        }),
      );
    } catch (err) {
      if (err instanceof TransportError) throw mapActionServerFailure(err, ctx);
      throw new RuntimeError("INTERNAL", `Writing the download of ${path} failed: ${String(err)}`, {
        cause: err,
      });
    }
    if (!result.ok) {
      const error = mapActionServerFailure(result, ctx);
      sink.destroy();
      throw error;
    }
    return result.bytes;
  }

  /** `GET /vscode/connection_token`: the token, or null when the server has no VS Code. */
  async vscodeConnectionToken(): Promise<string | null> {
    const res = await this.#send("/vscode/connection_token", { method: "GET", timeoutMs: 10_000 });
    return this.#json<{ token: string | null }>(res, "/vscode/connection_token").token ?? null;
  }

  /** `POST /update_mcp_server` with the stdio servers sorted by name. */
  async updateMcpServers(servers: McpStdioServer[]): Promise<{ detail: string; router_error_log?: string }> {
    const sorted = [...servers].sort((a, b) => a.name.localeCompare(b.name));
    const res = await this.#send("/update_mcp_server", {
      method: "POST",
      body: JSON.stringify(sorted),
      contentType: "application/json",
      timeoutMs: 60_000,
    });
    return this.#json(res, "/update_mcp_server");
  }

  /** `GET /server_info`: uptime, idle time (since the last action) and resources. */
  async serverInfo(): Promise<ServerInfo> {
    const res = await this.#send("/server_info", { method: "GET", timeoutMs: 10_000 });
    return this.#json<ServerInfo>(res, "/server_info");
  }

  /** Closes pooled connections. */
  close(): void {
    clearTimeout(this.#idleTimer);
    this.#agent.destroy();
  }
}
