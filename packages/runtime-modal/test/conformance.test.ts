import { type ModalEmulator, startModalEmulator } from "@agent-runtime/modal-emulator";
import type { RuntimeCapabilities } from "@agent-runtime/runtime-core";
import { runRuntimeConformance } from "@agent-runtime/runtime-core/testing";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { type ModalRuntimeProvider, modalRuntime } from "../src/index.js";
import { emulatorOptions, realModalCredentials } from "./helpers.js";

const CAPABILITIES: RuntimeCapabilities = {
  persistentShell: true,
  stdin: true,
  ipython: false,
  gpu: true,
  pause: false,
  attach: true,
  tunnels: true,
  vscode: false,
  fileTransfer: true,
  networkIsolation: false,
};

// Both of Modal's sandbox APIs, against the strict emulator (V2 without idle timeout, names, tags or listing, as
// Modal documents it). No test of the kit needs what V2 lacks (attach is by handle, which needs neither names nor
// tags), so both declare the same capabilities; what V2 refuses is tested in sandbox-api.test.ts.
for (const sandboxApi of ["v1", "v2"] as const) {
  describe(`against the strict modal-emulator through the real SDK, sandbox API ${sandboxApi}`, () => {
    let emulator: ModalEmulator;
    const providers: ModalRuntimeProvider[] = [];
    const appName = `conformance-${sandboxApi}`;
    const provider = (options: Parameters<typeof modalRuntime>[1], noChange?: number) => {
      const p = modalRuntime(
        emulatorOptions(emulator, {
          appName,
          sandboxApi,
          ...(noChange ? { noChangeTimeoutSeconds: noChange } : {}),
        }),
        options,
      );
      providers.push(p);
      return p;
    };
    beforeAll(async () => {
      emulator = await startModalEmulator({ strict: true });
    });
    afterAll(async () => {
      // Every sandbox the kit started went through the chosen API.
      const made = emulator.listSandboxes().filter((s) => s.appName === appName);
      expect(made.length).toBeGreaterThan(0);
      expect(made.every((s) => s.v2 === (sandboxApi === "v2"))).toBe(true);
      for (const p of providers) await p.close();
      await emulator?.close();
    });

    runRuntimeConformance({
      name: `runtime-modal on the strict modal-emulator, sandbox API ${sandboxApi}`,
      capabilities: CAPABILITIES,
      create: ({ sessionId, context, noChangeTimeoutSeconds }) =>
        provider(context, noChangeTimeoutSeconds).create({ sessionId }),
      attach: (handle, { context }) => provider(context).attach(handle),
    });
  });
}

const real = realModalCredentials();
describe.skipIf(!real)("against real Modal (MODAL_TOKEN_ID / MODAL_TOKEN_SECRET set)", () => {
  const providers: ModalRuntimeProvider[] = [];
  const provider = (context: Parameters<typeof modalRuntime>[1], noChange?: number) => {
    const p = modalRuntime(
      {
        credentials: real,
        appName: "agent-runtime-conformance",
        cpuCores: 0.25,
        cpuLimitCores: 1,
        memoryMiB: 512,
        timeoutMs: 900_000,
        idleTimeoutMs: 300_000,
        ...(noChange ? { noChangeTimeoutSeconds: noChange } : {}),
      },
      context,
    );
    providers.push(p);
    return p;
  };
  afterAll(async () => {
    for (const p of providers) await p.close();
  });
  runRuntimeConformance({
    name: "runtime-modal on real Modal",
    capabilities: CAPABILITIES,
    testTimeoutMs: 300_000,
    create: ({ sessionId, context, noChangeTimeoutSeconds }) =>
      provider(context, noChangeTimeoutSeconds).create({ sessionId }),
    attach: (handle, { context }) => provider(context).attach(handle),
  });
});
