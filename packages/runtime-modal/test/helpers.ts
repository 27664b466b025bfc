import { spawn } from "node:child_process";
import { actionServerBinPath } from "@agent-runtime/action-server";
import { type CostGuard, costGuard } from "@agent-runtime/cost-guard";
import {
  type ModalEmulator,
  type ModalEmulatorOptions,
  startModalEmulator,
} from "@agent-runtime/modal-emulator";
import {
  type CostHooks,
  isRuntimeError,
  type PluginContext,
  type RuntimeError,
  silentLogger,
} from "@agent-runtime/runtime-core";
import { afterAll, afterEach, beforeAll } from "vitest";
import {
  type ModalRuntime,
  type ModalRuntimeOptions,
  type ModalRuntimeProvider,
  modalRuntime,
} from "../src/index.js";

let apps = 0;

/** Options that point a provider at `emulator`: its URL, token and CA, the host's action-server bundle. */
export function emulatorOptions(
  emulator: ModalEmulator,
  extra: ModalRuntimeOptions = {},
): ModalRuntimeOptions {
  return {
    serverUrl: emulator.serverUrl,
    credentials: { tokenId: emulator.tokenId, tokenSecret: emulator.tokenSecret },
    caCertPem: emulator.caCertPem,
    // modal-emulator ignores RUN lines and its sandboxes see the host read-only: run the host's bundle.
    image: "node:20-bookworm-slim",
    serverCommand: [process.execPath, actionServerBinPath()],
    appName: `rm-test-${process.pid}-${apps++}`,
    livenessIntervalMs: 250,
    cpuCores: 0.25,
    cpuLimitCores: 1,
    memoryMiB: 512,
    ...extra,
  };
}

/** Real Modal credentials kept aside by test/setup.ts, or undefined (the real-Modal suite is then skipped). */
export function realModalCredentials(): { tokenId: string; tokenSecret: string } | undefined {
  const tokenId = process.env.AR_TEST_REAL_MODAL_TOKEN_ID;
  const tokenSecret = process.env.AR_TEST_REAL_MODAL_TOKEN_SECRET;
  return tokenId && tokenSecret ? { tokenId, tokenSecret } : undefined;
}

/** The RuntimeError code `p` rejects with ("resolved" when it does not). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isRuntimeError(err)) return err.code;
    throw err;
  }
  return "resolved";
}

/** Polls `fn` until it returns true or `timeoutMs` passes. */
export async function eventually(fn: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

/** The RuntimeError `p` rejects with; fails the test when it resolves or throws something else. */
export async function errorOf(p: Promise<unknown>): Promise<RuntimeError> {
  try {
    await p;
  } catch (err) {
    if (isRuntimeError(err)) return err;
    throw err;
  }
  throw new Error("expected a rejection, but the promise resolved");
}

/** What a test file gets from `useEmulator`: the emulator, and providers, runtimes and guards closed after each test. */
export interface EmulatorHarness {
  /** The strict modal-emulator of this file (set in beforeAll). */
  readonly emulator: ModalEmulator;
  /** Closes `o` after the test, the last tracked first. */
  track<T extends { close(): Promise<void> }>(o: T): T;
  /** A provider on the emulator (emulatorOptions + `extra`), with a silent logger unless `context` names one. */
  provider(extra?: ModalRuntimeOptions, context?: Partial<PluginContext>): ModalRuntimeProvider;
  /** A runtime of `p` for `sessionId`, connected. */
  connected(p: ModalRuntimeProvider, sessionId: string): Promise<ModalRuntime>;
  /** A cost guard on an in-memory ledger (with a budget of `budgetUsd` when given), its hooks and the leases reserved. */
  guarded(budgetUsd?: number): { guard: CostGuard; cost: CostHooks; leases: string[] };
}

/**
 * Starts a modal-emulator for the calling test file (strict unless `options` say otherwise) and registers the hooks
 * that reset its faults and close what the test opened after each test, and close the emulator after all.
 */
export function useEmulator(options: ModalEmulatorOptions = { strict: true }): EmulatorHarness {
  let emulator: ModalEmulator | undefined;
  const opened: { close(): Promise<void> }[] = [];
  const guards: CostGuard[] = [];
  beforeAll(async () => {
    emulator = await startModalEmulator(options);
  });
  afterEach(async () => {
    emulator?.faults.reset();
    for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
    for (const g of guards.splice(0)) g.close();
  });
  afterAll(async () => {
    await emulator?.close();
  });
  const harness: EmulatorHarness = {
    get emulator() {
      if (!emulator) throw new Error("the emulator starts in beforeAll: use it inside a test or hook");
      return emulator;
    },
    track(o) {
      opened.push(o);
      return o;
    },
    provider(extra = {}, context = {}) {
      return harness.track(
        modalRuntime(emulatorOptions(harness.emulator, extra), { logger: silentLogger, ...context }),
      );
    },
    async connected(p, sessionId) {
      const runtime = harness.track(await p.create({ sessionId }));
      await runtime.connect();
      return runtime;
    },
    guarded(budgetUsd) {
      const guard = costGuard({
        enforceIntervalMs: 0,
        sweepGraceMs: 0,
        ...(budgetUsd !== undefined ? { budgets: [{ limitUsd: budgetUsd }] } : {}),
      });
      guards.push(guard);
      const leases: string[] = [];
      const cost: CostHooks = {
        reserve: async (request) => {
          const lease = await guard.reserve(request);
          leases.push(lease.leaseId);
          return lease;
        },
        activate: (id, sandboxId) => guard.activate(id, sandboxId),
        heartbeat: (id) => guard.heartbeat(id),
        settle: (id, options) => guard.settle(id, options),
      };
      return { guard, cost, leases };
    },
  };
  return harness;
}

/** The RuntimeError `fn` throws (synchronously); fails the test when it returns or throws something else. */
export function thrownBy(fn: () => unknown): RuntimeError {
  try {
    fn();
  } catch (err) {
    if (isRuntimeError(err)) return err;
    throw err;
  }
  throw new Error("expected a RuntimeError");
}

/**
 * Runs `node ...args` asynchronously (the emulator lives in this process and must keep answering the child) and
 * resolves with its exit status and output; the child is killed after `timeoutMs`.
 */
export function runNode(
  args: string[],
  options: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
