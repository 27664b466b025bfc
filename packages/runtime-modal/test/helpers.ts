import { actionServerBinPath } from "@agent-runtime/action-server";
import type { ModalEmulator } from "@agent-runtime/modal-emulator";
import { isRuntimeError, type RuntimeError } from "@agent-runtime/runtime-core";
import type { ModalRuntimeOptions } from "../src/index.js";

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
