import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
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

function classify(err: NodeJS.ErrnoException): TransportError["kind"] {
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
  const { url } = opts;
  const isHttps = url.protocol === "https:";
  const doRequest = isHttps ? httpsRequest : httpRequest;
  const maxBody = opts.maxBodyBytes ?? 512 * 1024 * 1024;
  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    const finish = (err: TransportError | null, res?: HttpResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve(res!);
    };
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body !== undefined) headers["content-length"] = Buffer.byteLength(opts.body);
    const req = doRequest(
      url,
      {
        method: opts.method,
        headers,
        agent: opts.agent,
        ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
      },
      (res) => {
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
        res.on("error", (err: NodeJS.ErrnoException) =>
          finish(new TransportError(classify(err), err.message, { cause: err })),
        );
        res.on("aborted", () =>
          finish(new TransportError("reset", "The server closed the connection mid-response")),
        );
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish(new TransportError("timeout", `No complete response within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    timer.unref?.();
    const onAbort = () => {
      req.destroy();
      finish(new TransportError("aborted", "The request was aborted"));
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (err: NodeJS.ErrnoException) =>
      finish(new TransportError(classify(err), `${err.code ?? "error"}: ${err.message}`, { cause: err })),
    );
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
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
