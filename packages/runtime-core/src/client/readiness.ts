import { RuntimeError } from "../errors.js";
import { mapActionServerFailure } from "./failures.js";
import { type HttpResponse, TransportError } from "./http.js";

/** Options of `ActionExecutionClient.waitUntilAlive`. */
export interface WaitUntilAliveOptions {
  /** How long to keep polling, in ms. */
  deadlineMs: number;
  /** First delay between polls, in ms, growing 1.5x up to 100. @default 25 */
  intervalMs?: number;
  signal?: AbortSignal;
  /** The backend's word that the sandbox is dead (e.g. its process exited): stop with DISCONNECTED. */
  isDead?: () => string | undefined;
}

/** Resolves after `ms`, or rejects with CANCELLED when `signal` aborts first. */
export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(new RuntimeError("CANCELLED", "Cancelled while waiting"));
      },
      { once: true },
    );
  });

/**
 * Readiness by deadline, not by sleeping: calls `probe` (one `GET /alive` within the given ms) until the server
 * answers `{"status":"ok"}`. Refused or reset connections, protocol errors, other statuses and
 * `not initialized` mean "not ready yet"; 401/403 fail at once (UNAUTHORIZED); past the deadline it throws
 * TIMEOUT naming the last reason; CANCELLED on abort; DISCONNECTED when `isDead` answers.
 */
export async function pollUntilAlive(
  probe: (timeoutMs: number) => Promise<HttpResponse>,
  origin: string,
  options: WaitUntilAliveOptions,
): Promise<void> {
  const start = Date.now();
  let interval = options.intervalMs ?? 25;
  let lastReason = "no answer yet";
  for (;;) {
    const dead = options.isDead?.();
    if (dead)
      throw new RuntimeError("DISCONNECTED", `The sandbox stopped before its server was ready: ${dead}`);
    const remaining = options.deadlineMs - (Date.now() - start);
    if (remaining <= 0) {
      throw new RuntimeError(
        "TIMEOUT",
        `The action server at ${origin} was not ready within ${options.deadlineMs} ms (last: ${lastReason}). Raise startupTimeoutMs or check the sandbox's logs.`,
      );
    }
    try {
      const res = await probe(Math.min(5000, remaining));
      if (res.status === 200) {
        let status = "ok";
        try {
          status = (JSON.parse(res.body.toString("utf8")) as { status?: string }).status ?? "ok";
        } catch {
          status = "unparseable body";
        }
        if (status === "ok") return;
        lastReason = `status ${JSON.stringify(status)}`;
      } else if (res.status === 401 || res.status === 403) {
        throw mapActionServerFailure(res, { endpoint: "/alive", ready: false, timeoutMs: 5000 });
      } else {
        lastReason = `HTTP ${res.status}`;
      }
    } catch (err) {
      if (err instanceof RuntimeError) throw err;
      if (err instanceof TransportError && err.kind === "aborted")
        throw new RuntimeError("CANCELLED", "Cancelled while waiting for the action server");
      lastReason = err instanceof Error ? err.message : String(err);
    }
    await sleep(Math.min(interval, Math.max(0, options.deadlineMs - (Date.now() - start))), options.signal);
    interval = Math.min(100, Math.ceil(interval * 1.5));
  }
}
