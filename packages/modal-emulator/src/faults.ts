import { RuntimeError } from "@agent-runtime/runtime-core";
import type { status as GrpcStatus } from "@grpc/grpc-js";
import { GrpcError, parseGrpcStatus } from "./grpc-errors.js";

/** How an evicted sandbox is reported. */
export type EvictionStatus = "INTERNAL_FAILURE" | "MEMORY_MANAGER_EVICTION" | "TERMINATED";

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
  readonly #failures = new Map<string, { code: GrpcStatus; remaining: number; message: string }[]>();
  #createDelayMs = 0;
  #imageBuildFailures: string[] = [];
  readonly #target: SandboxFaultTarget;

  constructor(target: SandboxFaultTarget) {
    this.#target = target;
  }

  /**
   * Fails the next `n` calls of `method` with `status` (a code or a name such as `"UNAVAILABLE"`). The SDK
   * retries UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, INTERNAL and UNKNOWN on unary control-plane calls.
   */
  failNext(method: string, status: number | string, n = 1, message?: string): void {
    const code = parseGrpcStatus(status);
    if (code === undefined) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `faults.failNext: unknown gRPC status ${JSON.stringify(status)}`,
      );
    }
    if (!Number.isInteger(n) || n < 1)
      throw new RuntimeError("INVALID_ARGUMENT", "faults.failNext: n must be >= 1");
    const list = this.#failures.get(method) ?? [];
    list.push({ code, remaining: n, message: message ?? `injected fault: ${method} failed` });
    this.#failures.set(method, list);
  }

  /** Delays every `SandboxCreate`/`SandboxCreateV2` by `ms` (0 turns it off). */
  delayCreates(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0)
      throw new RuntimeError("INVALID_ARGUMENT", "faults.delayCreates: ms >= 0");
    this.#createDelayMs = ms;
  }

  /** Makes the next `n` image builds fail with `message` (the SDK throws "Image build for im-... failed"). */
  failImageBuilds(n = 1, message = "injected fault: image build failed"): void {
    for (let i = 0; i < n; i++) this.#imageBuildFailures.push(message);
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
    this.#createDelayMs = 0;
    this.#imageBuildFailures = [];
  }

  /** @internal Throws the pending failure for `method`, if any. */
  check(method: string): void {
    const list = this.#failures.get(method);
    const head = list?.[0];
    if (!list || !head) return;
    head.remaining -= 1;
    if (head.remaining <= 0) list.shift();
    if (list.length === 0) this.#failures.delete(method);
    throw new GrpcError(head.code, head.message);
  }

  /** @internal Current create delay. */
  get createDelayMs(): number {
    return this.#createDelayMs;
  }

  /** @internal Takes the next image build failure message, if any. */
  takeImageBuildFailure(): string | undefined {
    return this.#imageBuildFailures.shift();
  }
}
