// About 400 lines: one class per API surface the packages use (transport, images, containers, exec, attach); the
// build's streaming lives in build.ts, the wire formats (tar, multiplexed streams, JSON lines) in their own modules.
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import type { Readable, Writable } from "node:stream";
import { type BuildOptions, buildImage } from "./build.js";
import { type EngineEndpoint, endpointText, resolveEngineEndpoint } from "./endpoint.js";
import { codeOfStatus, DockerEngineError, engineMessage } from "./errors.js";

export type { BuildOptions } from "./build.js";

import { Demuxer } from "./streams.js";
import type {
  ContainerCreateBody,
  ContainerInspect,
  ContainerSummary,
  EngineVersion,
  ExecCreateBody,
  ExecInspect,
  ImageInspect,
} from "./types.js";

/** Options of {@link DockerEngine}. */
export interface DockerEngineOptions {
  /**
   * The engine's address: `unix:///path/to/docker.sock`, an absolute socket path or `tcp://host:port`.
   * @default `DOCKER_HOST`, else the first existing of /var/run/docker.sock, /run/podman/podman.sock and the rootless Podman socket
   */
  address?: string;
  /**
   * The API version requests are made with (Docker 20.10+ and Podman 4+ speak 1.41).
   * @default "1.41"
   */
  apiVersion?: string;
  /** Deadline of a plain request (not builds, logs or exec streams), in ms. @default 30000 */
  requestTimeoutMs?: number;
}

/** What a request sends. */
export interface EngineRequest {
  query?: Record<string, string | number | boolean | undefined>;
  /** A JSON body (objects) or raw bytes (with `contentType`). */
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** An answered request. */
export interface EngineResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function queryString(query: EngineRequest["query"]): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** An attached exec: its output stream, its stdin (when the engine gave one) and a way to drop it. */
export interface ExecStream {
  output: Readable;
  input: Writable | undefined;
  close(): void;
}

/**
 * A client of the Docker Engine API over the engine's unix socket (or plain TCP), for Docker and for Podman's
 * Docker-compatible service. Plain `node:http`, no dependencies. Every failure is a {@link DockerEngineError}:
 * the engine's own message with a code from its HTTP status (404 NOT_FOUND, 409 CONFLICT...), UNAVAILABLE when the
 * engine cannot be reached, TIMEOUT past a deadline.
 *
 * @example
 * ```ts
 * const engine = new DockerEngine(); // DOCKER_HOST or /var/run/docker.sock
 * await engine.ping();
 * const id = await engine.createContainer({ Image: "debian:bookworm-slim", Cmd: ["sleep", "60"] });
 * await engine.startContainer(id);
 * await engine.removeContainer(id);
 * ```
 */
export class DockerEngine {
  readonly endpoint: EngineEndpoint;
  readonly apiVersion: string;
  readonly #timeoutMs: number;

  constructor(options: DockerEngineOptions = {}) {
    this.endpoint = resolveEngineEndpoint(options.address);
    this.apiVersion = options.apiVersion ?? "1.41";
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  /** The engine's address, as `unix:///…` or `tcp://…`. */
  get address(): string {
    return endpointText(this.endpoint);
  }

  #base(): { socketPath: string } | { host: string; port: number } {
    return this.endpoint;
  }

  /** UNAVAILABLE naming the engine's address, for a connection that failed with `cause`. */
  unreachable(cause: unknown): DockerEngineError {
    const why = cause instanceof Error ? cause.message : String(cause);
    return new DockerEngineError(
      "UNAVAILABLE",
      `The container engine at ${this.address} cannot be reached (${why}). Is Docker (or podman system service) running there, and may this user open its socket?`,
      { cause },
    );
  }

  /**
   * Opens a request and resolves with the response as it streams (any status), for answers read as they come
   * (builds). Errors reading it: TIMEOUT past `timeoutMs`, UNAVAILABLE when the connection fails.
   */
  openStream(method: string, path: string, req: EngineRequest): Promise<IncomingMessage> {
    const timeoutMs = req.timeoutMs ?? this.#timeoutMs;
    let payload: Buffer | undefined;
    let contentType = req.contentType;
    if (Buffer.isBuffer(req.body)) payload = req.body;
    else if (req.body !== undefined) {
      payload = Buffer.from(JSON.stringify(req.body), "utf8");
      contentType ??= "application/json";
    }
    return new Promise((resolve, reject) => {
      const r = httpRequest({
        ...this.#base(),
        method,
        path: `/v${this.apiVersion}${path}${queryString(req.query)}`,
        headers: {
          Host: "docker",
          ...(contentType ? { "Content-Type": contentType } : {}),
          ...(payload ? { "Content-Length": String(payload.length) } : {}),
        },
        ...(req.signal ? { signal: req.signal } : {}),
      });
      let response: IncomingMessage | undefined;
      const timer = setTimeout(() => {
        const late = new DockerEngineError(
          "TIMEOUT",
          `${method} ${path} on the container engine at ${this.address} took longer than ${timeoutMs} ms`,
        );
        // Once the answer is streaming (builds, logs), its reader gets the TIMEOUT, not a bare "aborted".
        if (response) response.destroy(late);
        else r.destroy(late);
      }, timeoutMs);
      timer.unref();
      r.once("response", (res) => {
        response = res;
        res.once("close", () => clearTimeout(timer));
        resolve(res);
      });
      r.once("error", (err) => {
        clearTimeout(timer);
        if (err instanceof DockerEngineError) reject(err);
        else if (req.signal?.aborted)
          reject(new DockerEngineError("CANCELLED", `${method} ${path} was cancelled`, { cause: err }));
        else reject(this.unreachable(err));
      });
      r.end(payload);
    });
  }

  /** One request, its whole body read. Statuses of 400 and over are not errors here (see {@link json}). */
  async request(method: string, path: string, req: EngineRequest = {}): Promise<EngineResponse> {
    const res = await this.openStream(method, path, req);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of res) chunks.push(chunk as Buffer);
    } catch (err) {
      if (err instanceof DockerEngineError) throw err;
      throw this.unreachable(err);
    }
    return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
  }

  /** A request whose answer must be 2xx: the parsed JSON body (undefined when empty), else a DockerEngineError. */
  async json<T>(method: string, path: string, req: EngineRequest = {}, what?: string): Promise<T> {
    const res = await this.request(method, path, req);
    if (res.status >= 400) throw this.failed(res, what ?? `${method} ${path}`);
    if (res.body.length === 0) return undefined as T;
    try {
      return JSON.parse(res.body.toString("utf8")) as T;
    } catch (cause) {
      throw new DockerEngineError(
        "INTERNAL",
        `${what ?? path}: the engine answered something that is not JSON`,
        {
          cause,
        },
      );
    }
  }

  /** The error of a failed answer: the engine's message after `what`, a code from its status. */
  failed(res: EngineResponse, what: string): DockerEngineError {
    const message = engineMessage(res.body);
    // Podman answers a name conflict with 500 and "... is already in use" where Docker answers 409.
    const code = /already in use/i.test(message) ? "CONFLICT" : codeOfStatus(res.status);
    return new DockerEngineError(code, `${what}: ${message}`, {
      status: res.status,
    });
  }

  /** Resolves when the engine answers `/_ping`; UNAVAILABLE otherwise. */
  async ping(timeoutMs = 5000): Promise<void> {
    const res = await this.request("GET", "/_ping", { timeoutMs });
    if (res.status !== 200) throw this.unreachable(new Error(`/_ping answered ${res.status}`));
  }

  /** The engine's version document (Podman's compatible service says "Podman Engine" among its components). */
  version(): Promise<EngineVersion> {
    return this.json<EngineVersion>("GET", "/version");
  }

  // ---- images ----

  /** The image's inspection, or undefined when the engine has no such image. */
  async inspectImage(ref: string): Promise<ImageInspect | undefined> {
    const res = await this.request("GET", `/images/${encodeURIComponent(ref)}/json`);
    if (res.status === 404) return undefined;
    if (res.status >= 400) throw this.failed(res, `Inspecting image ${ref}`);
    return JSON.parse(res.body.toString("utf8")) as ImageInspect;
  }

  /** Removes an image (NOT_FOUND is not an error). */
  async removeImage(ref: string, options: { force?: boolean } = {}): Promise<void> {
    const res = await this.request("DELETE", `/images/${encodeURIComponent(ref)}`, {
      query: { force: options.force ?? false },
    });
    if (res.status >= 400 && res.status !== 404) throw this.failed(res, `Removing image ${ref}`);
  }

  /**
   * Builds an image from a context (a `Dockerfile` and any files it copies) and tags it. Resolves with the image
   * id and the build's log; a failed step is FAILED_PRECONDITION with the last lines of the log, a build past
   * `timeoutMs` TIMEOUT with the log so far (Docker stops the build when the connection closes; Podman 4 finishes the
   * running step in the background but tags nothing). See `build.ts`.
   */
  build(options: BuildOptions): Promise<{ imageId: string; log: string }> {
    return buildImage(this, options);
  }

  // ---- containers ----

  /** Creates a container; resolves with its id. A `name` already in use is CONFLICT. */
  async createContainer(body: ContainerCreateBody, options: { name?: string } = {}): Promise<string> {
    const created = await this.json<{ Id: string }>(
      "POST",
      "/containers/create",
      { query: { name: options.name }, body },
      `Creating a container from ${body.Image}`,
    );
    return created.Id;
  }

  async startContainer(id: string): Promise<void> {
    const res = await this.request("POST", `/containers/${encodeURIComponent(id)}/start`);
    // 304: already started.
    if (res.status >= 400) throw this.failed(res, `Starting container ${id}`);
  }

  /** The container's inspection, or undefined when it does not exist. */
  async inspectContainer(id: string): Promise<ContainerInspect | undefined> {
    const res = await this.request("GET", `/containers/${encodeURIComponent(id)}/json`);
    if (res.status === 404) return undefined;
    if (res.status >= 400) throw this.failed(res, `Inspecting container ${id}`);
    return JSON.parse(res.body.toString("utf8")) as ContainerInspect;
  }

  /**
   * Containers that carry every label of `labels` (`true` matches any value), running ones only unless `all`.
   */
  async listContainers(
    options: { labels?: Record<string, string | true>; all?: boolean } = {},
  ): Promise<ContainerSummary[]> {
    const label = Object.entries(options.labels ?? {}).map(([k, v]) => (v === true ? k : `${k}=${v}`));
    return this.json<ContainerSummary[]>(
      "GET",
      "/containers/json",
      { query: { all: options.all ?? false, filters: label.length ? JSON.stringify({ label }) : undefined } },
      "Listing containers",
    );
  }

  /** Sends a signal (default SIGKILL); a container that is not running is not an error. */
  async killContainer(id: string, signal = "SIGKILL"): Promise<void> {
    const res = await this.request("POST", `/containers/${encodeURIComponent(id)}/kill`, {
      query: { signal },
    });
    if (res.status >= 400 && res.status !== 404 && res.status !== 409 && res.status !== 304) {
      throw this.failed(res, `Killing container ${id}`);
    }
  }

  /** Removes a container, running or not, with its anonymous volumes. NOT_FOUND is not an error. */
  async removeContainer(id: string): Promise<void> {
    const res = await this.request("DELETE", `/containers/${encodeURIComponent(id)}`, {
      query: { force: true, v: true },
      timeoutMs: Math.max(this.#timeoutMs, 60_000),
    });
    if (res.status >= 400 && res.status !== 404) throw this.failed(res, `Removing container ${id}`);
  }

  /**
   * The container's recent output (stdout and stderr interleaved as lines, the last `tail` lines), for error
   * messages. A container created with a TTY is read as one stream.
   */
  async containerLogs(id: string, options: { tail?: number } = {}): Promise<string> {
    const res = await this.request("GET", `/containers/${encodeURIComponent(id)}/logs`, {
      query: { stdout: true, stderr: true, tail: options.tail ?? 50 },
    });
    if (res.status >= 400) throw this.failed(res, `Reading the logs of container ${id}`);
    const body = res.body;
    // Multiplexed frames start with a stream byte (0-2) and three zero bytes.
    const framed =
      body.length >= 8 && (body[0] as number) <= 2 && body[1] === 0 && body[2] === 0 && body[3] === 0;
    if (!framed) return body.toString("utf8");
    const parts: Buffer[] = [];
    new Demuxer((_kind, data) => parts.push(data)).write(body);
    return Buffer.concat(parts).toString("utf8");
  }

  // ---- exec ----

  /** Creates an exec in a running container; resolves with its id. */
  async createExec(containerId: string, body: ExecCreateBody): Promise<string> {
    const created = await this.json<{ Id: string }>(
      "POST",
      `/containers/${encodeURIComponent(containerId)}/exec`,
      { body },
      `Creating an exec in container ${containerId}`,
    );
    return created.Id;
  }

  /**
   * Starts an exec attached: resolves with its output (multiplexed without a TTY: see `Demuxer`) and, when the
   * engine hijacked the connection (Docker and Podman do), its stdin. `close()` drops the connection.
   */
  startExec(execId: string, options: { tty?: boolean } = {}): Promise<ExecStream> {
    const payload = Buffer.from(JSON.stringify({ Detach: false, Tty: options.tty ?? false }));
    return this.#hijack(`/exec/${encodeURIComponent(execId)}/start`, payload, `Starting exec ${execId}`);
  }

  /**
   * Attaches to a container's main process (stdin, stdout and stderr; multiplexed without a TTY: see `Demuxer`).
   * Attach before `startContainer` to see all of its output; with `OpenStdin` (and `StdinOnce`) in the create,
   * ending `input` closes the process's stdin. `close()` drops the connection. `{ stdout: false, stderr: false }`
   * attaches stdin alone (to hand a process input without reading its output).
   */
  attachContainer(id: string, streams: { stdout?: boolean; stderr?: boolean } = {}): Promise<ExecStream> {
    const stdout = streams.stdout === false ? 0 : 1;
    const stderr = streams.stderr === false ? 0 : 1;
    return this.#hijack(
      `/containers/${encodeURIComponent(id)}/attach${queryString({ stream: 1, stdin: 1, stdout, stderr })}`,
      undefined,
      `Attaching to container ${id}`,
    );
  }

  /** A request the engine answers by hijacking the connection (exec start, attach). */
  #hijack(path: string, payload: Buffer | undefined, what: string): Promise<ExecStream> {
    return new Promise((resolve, reject) => {
      const r = httpRequest({
        ...this.#base(),
        method: "POST",
        path: `/v${this.apiVersion}${path}`,
        headers: {
          Host: "docker",
          ...(payload
            ? { "Content-Type": "application/json", "Content-Length": String(payload.length) }
            : {}),
          Connection: "Upgrade",
          Upgrade: "tcp",
        },
      });
      r.once("upgrade", (_res, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        resolve({ output: socket, input: socket, close: () => socket.destroy() });
      });
      r.once("response", (res) => {
        if ((res.statusCode ?? 0) >= 400) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.once("end", () =>
            reject(
              this.failed(
                { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) },
                what,
              ),
            ),
          );
          return;
        }
        // An engine that does not upgrade streams the output as the response body (stdin is then not wired).
        resolve({ output: res, input: undefined, close: () => res.destroy() });
      });
      r.once("error", (err) => reject(this.unreachable(err)));
      r.end(payload);
    });
  }

  async inspectExec(execId: string): Promise<ExecInspect> {
    return this.json<ExecInspect>(
      "GET",
      `/exec/${encodeURIComponent(execId)}/json`,
      {},
      `Inspecting exec ${execId}`,
    );
  }
}
