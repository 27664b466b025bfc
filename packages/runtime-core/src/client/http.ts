import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { rootCertificates } from "node:tls";

/** One HTTP exchange's result, body fully read. */
export interface HttpResponse {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** Options of {@link httpCall}. */
export interface HttpCallOptions {
  method: "GET" | "POST";
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Whole-exchange deadline in ms (connect + send + receive). */
  timeoutMs: number;
  agent?: HttpAgent | HttpsAgent;
  signal?: AbortSignal;
  /** Connect to this unix socket instead of the URL's host and port. */
  socketPath?: string;
  /** Largest body accepted, in bytes. @default 512 MiB */
  maxBodyBytes?: number;
}

/** A transport failure before a complete HTTP response arrived. `kind` drives retry and error mapping. */
export class TransportError extends Error {
  override readonly name = "TransportError";
  constructor(
    readonly kind: "refused" | "reset" | "protocol" | "timeout" | "aborted" | "other",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The {@link TransportError} kind of a Node network error. */
export function classifyTransportError(err: NodeJS.ErrnoException): TransportError["kind"] {
  const code = err.code ?? "";
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EHOSTUNREACH") return "refused";
  if (code === "ECONNRESET" || code === "EPIPE" || err.message === "socket hang up") return "reset";
  if (code.startsWith("HPE_") || code === "ERR_TLS_CERT_ALTNAME_INVALID" || code.startsWith("ERR_SSL"))
    return "protocol";
  return "other";
}

/**
 * Performs one HTTP(S) request with node:http, with a whole-exchange deadline and abort support.
 * Rejects with {@link TransportError} on network failures; never throws for HTTP status codes.
 */
export function httpCall(opts: HttpCallOptions): Promise<HttpResponse> {
  const maxBody = opts.maxBodyBytes ?? 512 * 1024 * 1024;
  return exchange<HttpResponse>(opts, (res, req, finish) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBody) {
        req.destroy();
        finish(new TransportError("other", `Response body exceeds ${maxBody} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on("end", () =>
      finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
    );
  });
}

/**
 * One request of `opts` as a promise, under a whole-exchange deadline and the abort signal: what `httpCall` and
 * `httpCallLines` share. `onResponse` reads the response and settles the exchange with `finish` (the first call
 * wins; `settled()` says whether one came); transport failures of the request or its response settle it here.
 */
export function exchange<T>(
  opts: HttpCallOptions,
  onResponse: (
    res: IncomingMessage,
    req: ClientRequest,
    finish: (err: TransportError | null, value?: T) => void,
    settled: () => boolean,
  ) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let disarm = () => {};
    const finish = (err: TransportError | null, value?: T) => {
      if (settled) return;
      settled = true;
      disarm();
      if (err) reject(err);
      else resolve(value as T);
    };
    ({ disarm } = sendRequest(opts, finish, (res, req) => onResponse(res, req, finish, () => settled)));
  });
}

/**
 * Sends one request of `opts` (content-length set, body written) under a whole-exchange deadline and the abort
 * signal. A transport failure of the request or of its response goes to `fail`; `onResponse` reads the
 * response. `disarm` clears the deadline and the abort listener: call it when the exchange settles.
 */
function sendRequest(
  opts: HttpCallOptions,
  fail: (err: TransportError) => void,
  onResponse: (res: IncomingMessage, req: ClientRequest) => void,
): { req: ClientRequest; disarm: () => void } {
  const doRequest = opts.url.protocol === "https:" ? httpsRequest : httpRequest;
  const headers: Record<string, string | number> = { ...opts.headers };
  if (opts.body !== undefined) headers["content-length"] = Buffer.byteLength(opts.body);
  const req = doRequest(
    opts.url,
    {
      method: opts.method,
      headers,
      agent: opts.agent,
      ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
    },
    (res) => {
      res.on("error", (err: NodeJS.ErrnoException) =>
        fail(new TransportError(classifyTransportError(err), err.message, { cause: err })),
      );
      res.on("aborted", () =>
        fail(new TransportError("reset", "The server closed the connection mid-response")),
      );
      onResponse(res, req);
    },
  );
  // Listened to before anything can destroy the request: a request destroyed early (a signal that was already
  // aborted) emits "socket hang up", which would otherwise be an uncaught exception.
  req.on("error", (err: NodeJS.ErrnoException) => fail(requestFailure(err)));
  const timer = setTimeout(() => {
    req.destroy();
    fail(new TransportError("timeout", `No complete response within ${opts.timeoutMs} ms`));
  }, opts.timeoutMs);
  timer.unref?.();
  const onAbort = () => {
    req.destroy();
    fail(new TransportError("aborted", "The request was aborted"));
  };
  const disarm = () => {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  };
  if (opts.signal?.aborted) {
    onAbort();
    disarm();
    return { req, disarm };
  }
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.body !== undefined) req.end(opts.body);
  else req.end();
  return { req, disarm };
}

/** The TransportError of a request's own `error` event (connect, TLS, send). */
function requestFailure(err: NodeJS.ErrnoException): TransportError {
  return new TransportError(classifyTransportError(err), `${err.code ?? "error"}: ${err.message}`, {
    cause: err,
  });
}

/** Options of {@link httpStreamTo}. */
export interface HttpStreamOptions extends Omit<HttpCallOptions, "maxBodyBytes" | "body"> {
  /** Where a 2xx body goes, with backpressure; ended when the body ends (as `stream.pipeline` does). */
  sink: Writable;
  /** Largest error (non-2xx) body kept for the caller, in bytes. @default 65536 */
  maxErrorBodyBytes?: number;
}

/** The result of {@link httpStreamTo}: a 2xx status with the byte count streamed, or a non-2xx with its body. */
export type HttpStreamResult =
  | { ok: true; status: number; headers: IncomingMessage["headers"]; bytes: number }
  | { ok: false; status: number; headers: IncomingMessage["headers"]; body: Buffer };

/**
 * Performs one GET whose 2xx body is piped into `sink` with backpressure, so memory stays bounded by the
 * streams' buffers whatever the size. `timeoutMs` is an inactivity deadline here (no connection, header or
 * body byte for that long), since a large body legitimately takes longer than any fixed deadline. A
 * non-2xx body is read (up to `maxErrorBodyBytes`) and returned, and the sink is left untouched.
 * Rejects with {@link TransportError} on network failures (the sink is then destroyed with the error), or
 * with the sink's own error when writing fails. The sink's `error` events are handled here (the promise
 * reports them), so a destroyed sink never throws as an unhandled `error` event.
 */
export function httpStreamTo(opts: HttpStreamOptions): Promise<HttpStreamResult> {
  const { url, sink } = opts;
  const doRequest = url.protocol === "https:" ? httpsRequest : httpRequest;
  const maxErrorBody = opts.maxErrorBodyBytes ?? 64 * 1024;
  return new Promise<HttpStreamResult>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: Error | null, result?: HttpStreamResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve(result!);
    };
    // The caller learns of every failure through the promise, so a destroyed sink must not also throw. Which
    // side failed first decides the error: a failing sink (disk full) makes pipeline destroy the response,
    // which then reports a reset of its own (on Node 24 before pipeline settles).
    let sinkError: Error | undefined;
    let sinkFailedFirst = false;
    let responseFailed = false;
    sink.on("error", (err: Error) => {
      if (sinkError === undefined && !responseFailed) sinkFailedFirst = true;
      sinkError ??= err;
    });
    const fail = (err: TransportError) => {
      req.destroy();
      if (!sink.destroyed) sink.destroy(err);
      finish(err);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => fail(new TransportError("timeout", `No data for ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      );
      timer.unref?.();
    };
    const req = doRequest(
      url,
      {
        method: opts.method,
        headers: { ...opts.headers },
        agent: opts.agent,
        ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
      },
      (res) => {
        arm();
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            arm();
            if (size < maxErrorBody) chunks.push(chunk.subarray(0, maxErrorBody - size));
            size += chunk.length;
          });
          res.on("end", () =>
            finish(null, { ok: false, status, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on("error", (err: NodeJS.ErrnoException) =>
            finish(new TransportError(classifyTransportError(err), err.message, { cause: err })),
          );
          return;
        }
        let bytes = 0;
        let transportError: TransportError | undefined;
        res.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          arm();
        });
        // Registered before pipeline's own listeners: tells a broken connection from a failing sink.
        res.on("error", (err: NodeJS.ErrnoException) => {
          responseFailed = true;
          transportError ??= new TransportError(classifyTransportError(err), err.message, { cause: err });
        });
        res.on("aborted", () => {
          responseFailed = true;
          transportError ??= new TransportError("reset", "The server closed the connection mid-response");
        });
        // While the sink applies backpressure no data flows; that is not inactivity of the server.
        sink.on("drain", arm);
        pipeline(res, sink).then(
          () => {
            sink.off("drain", arm);
            if (!res.complete) fail(new TransportError("reset", "The response ended before its last byte"));
            else finish(null, { ok: true, status, headers: res.headers, bytes });
          },
          (err: Error) => {
            sink.off("drain", arm);
            req.destroy();
            // A failing sink (disk full...) is the caller's error, not the transport's.
            finish(sinkFailedFirst ? (sinkError ?? err) : (transportError ?? err));
          },
        );
      },
    );
    // Before anything can destroy the request (see sendRequest).
    req.on("error", (err: NodeJS.ErrnoException) => fail(requestFailure(err)));
    arm();
    const onAbort = () => fail(new TransportError("aborted", "The request was aborted"));
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    req.end();
  });
}

/** Builds a multipart/form-data body with one file field. */
export function multipartFile(
  field: string,
  filename: string,
  content: Buffer,
): { body: Buffer; contentType: string } {
  const boundary = `----agent-runtime-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const safeName = filename.replace(/["\r\n\\]/g, "_");
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${safeName}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    body: Buffer.concat([head, content, tail]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** Creates a keep-alive agent for `url`'s protocol, trusting `ca` (PEM) in addition to the defaults when given. */
export function createAgent(url: URL, ca?: string | Buffer): HttpAgent | HttpsAgent {
  if (url.protocol === "https:") {
    return new HttpsAgent({
      keepAlive: true,
      maxSockets: 16,
      ...(ca ? { ca: [...rootCertificates, ca.toString()] } : {}),
    });
  }
  return new HttpAgent({ keepAlive: true, maxSockets: 16 });
}
