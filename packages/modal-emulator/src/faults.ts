import { RuntimeError } from "@agent-runtime/runtime-core";
import type { status as GrpcStatus } from "@grpc/grpc-js";
import { GrpcError, parseGrpcStatus } from "./grpc-errors.js";

/** How an evicted sandbox is reported. */
export type EvictionStatus = "INTERNAL_FAILURE" | "MEMORY_MANAGER_EVICTION" | "TERMINATED";

/** What the next image build does instead of succeeding. */
export type ImageBuildFault =
  | { kind: "fail"; message: string; log?: string }
  /** The build never reports a result: `ImageJoinStreaming` streams its log, then ends without one. */
  | { kind: "hang" };

interface PendingFailure {
  code: GrpcStatus;
  remaining: number;
  message: string;
  retryAfterSecs?: number;
}

const CREATE_METHODS = new Set(["SandboxCreate", "SandboxCreateV2"]);

/** Sandbox-level faults the emulator core implements. */
export interface SandboxFaultTarget {
  evict(sandboxId: string, status: EvictionStatus): boolean;
  cutTunnels(sandboxId: string, refuseMs: number): boolean;
}

/**
 * Fault injection, for tests of retry and failure paths. Method names are the gRPC method names of either
 * service (`SandboxCreateV2`, `TaskExecStart`, ...).
 */
export class Faults {
  readonly #failures = new Map<string, PendingFailure[]>();
  #createFailures: PendingFailure[] = [];
  #createDelayMs = 0;
  #imageBuildFaults: ImageBuildFault[] = [];
  readonly #target: SandboxFaultTarget;

  constructor(target: SandboxFaultTarget) {
    this.#target = target;
  }

  /**
   * Fails the next `n` calls of `method` with `status` (a code or a name such as `"UNAVAILABLE"`). The SDK
   * retries UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, INTERNAL and UNKNOWN on unary control-plane calls.
   */
  failNext(method: string, status: number | string, n = 1, message?: string): void {
    this.#push(method, {
      code: statusOf("failNext", status),
      remaining: countOf("failNext", n),
      message: message ?? `injected fault: ${method} failed`,
    });
  }

  /**
   * Throttles the next `n` calls of `method` the way Modal asks clients to slow down: the call fails with
   * `status` and a `modal.client.RPCRetryPolicy { retry_after_secs }` in the `grpc-status-details-bin`
   * trailer. `modal@0.11.1` obeys it for unary calls (its retry middleware sleeps `retry_after_secs`, at least
   * 100 ms, and sends the call again), without bound unless the client sets `maxThrottleWaitSecs` (or
   * `MODAL_MAX_THROTTLE_WAIT`); past that bound, or with `maxThrottleWaitSecs: 0`, the error surfaces. Which
   * status Modal sends with the policy is not documented (the SDK ignores it): RESOURCE_EXHAUSTED by default.
   */
  throttle(method: string, n = 1, retryAfterSecs = 1, status: number | string = "RESOURCE_EXHAUSTED"): void {
    if (!Number.isFinite(retryAfterSecs) || retryAfterSecs < 0)
      throw new RuntimeError("INVALID_ARGUMENT", "faults.throttle: retryAfterSecs must be >= 0");
    this.#push(method, {
      code: statusOf("throttle", status),
      remaining: countOf("throttle", n),
      message: `injected throttle: ${method} asked to retry after ${retryAfterSecs} s`,
      retryAfterSecs,
    });
  }

  /**
   * Fails the next `n` sandbox creates, whichever RPC they use (`SandboxCreate` for V1 and GPU sandboxes,
   * `SandboxCreateV2`), with `status` (default RESOURCE_EXHAUSTED: no capacity). modal@0.11.1 does not retry
   * RESOURCE_EXHAUSTED itself.
   */
  failCreates(n = 1, status: number | string = "RESOURCE_EXHAUSTED", message?: string): void {
    const code = statusOf("failCreates", status);
    this.#createFailures.push({
      code,
      remaining: countOf("failCreates", n),
      message: message ?? "injected fault: no capacity for this sandbox, try again later",
    });
  }

  /** Delays every `SandboxCreate`/`SandboxCreateV2` by `ms` (0 turns it off). */
  delayCreates(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0)
      throw new RuntimeError("INVALID_ARGUMENT", "faults.delayCreates: ms >= 0");
    this.#createDelayMs = ms;
  }

  /**
   * Makes the next `n` image builds fail with `message` (the SDK throws "Image build for im-... failed with the
   * exception: <message>"). `log` (lines of text) is written to the build log before the failure, so a client
   * that reads the log (`ImageJoinStreaming` with `include_logs_for_finished`) can show its tail.
   */
  failImageBuilds(
    n = 1,
    message = "injected fault: image build failed",
    options: { log?: string } = {},
  ): void {
    for (let i = 0; i < countOf("failImageBuilds", n); i++)
      this.#imageBuildFaults.push({ kind: "fail", message, log: options.log });
  }

  /**
   * Makes the next `n` image builds never finish: their log is streamed, but no result ever comes, so
   * `ImageJoinStreaming` ends each window without one and the SDK re-opens it forever (`image.build()` and
   * `sandboxes.create()` never return). The builds stay pending until the emulator closes.
   */
  hangImageBuilds(n = 1): void {
    for (let i = 0; i < countOf("hangImageBuilds", n); i++) this.#imageBuildFaults.push({ kind: "hang" });
  }

  /**
   * Kills a running sandbox as the platform would (its wait() then reports the status's exit code). Returns
   * false when no running sandbox has that id.
   */
  evict(sandboxId: string, status: EvictionStatus = "INTERNAL_FAILURE"): boolean {
    return this.#target.evict(sandboxId, status);
  }

  /** Drops every open tunnel connection of a sandbox and refuses new ones for `refuseMs`. */
  cutTunnels(sandboxId: string, refuseMs = 0): boolean {
    return this.#target.cutTunnels(sandboxId, refuseMs);
  }

  /** Clears every pending fault. */
  reset(): void {
    this.#failures.clear();
    this.#createFailures = [];
    this.#createDelayMs = 0;
    this.#imageBuildFaults = [];
  }

  /** @internal Throws the pending failure for `method`, if any. */
  check(method: string): void {
    const list = this.#failures.get(method);
    const pending = list?.[0] ? list : CREATE_METHODS.has(method) ? this.#createFailures : undefined;
    const head = pending?.[0];
    if (!pending || !head) return;
    head.remaining -= 1;
    if (head.remaining <= 0) pending.shift();
    if (list && list.length === 0) this.#failures.delete(method);
    throw new GrpcError(head.code, head.message, { retryAfterSecs: head.retryAfterSecs });
  }

  /** @internal Current create delay. */
  get createDelayMs(): number {
    return this.#createDelayMs;
  }

  /** @internal Takes the fault of the next image build, if any. */
  takeImageBuildFault(): ImageBuildFault | undefined {
    return this.#imageBuildFaults.shift();
  }

  #push(method: string, failure: PendingFailure): void {
    const list = this.#failures.get(method) ?? [];
    list.push(failure);
    this.#failures.set(method, list);
  }
}

function statusOf(what: string, status: number | string): GrpcStatus {
  const code = parseGrpcStatus(status);
  if (code === undefined)
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `faults.${what}: unknown gRPC status ${JSON.stringify(status)}`,
    );
  return code;
}

function countOf(what: string, n: number): number {
  if (!Number.isInteger(n) || n < 1)
    throw new RuntimeError("INVALID_ARGUMENT", `faults.${what}: n must be >= 1`);
  return n;
}
