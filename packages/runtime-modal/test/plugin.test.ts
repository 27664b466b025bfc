import { type ModalEmulator, startModalEmulator } from "@agent-runtime/modal-emulator";
import {
  isRuntimeError,
  noopRedactor,
  type PluginInstance,
  type PluginOptions,
  PluginRegistry,
  type RuntimeProvider,
  silentLogger,
} from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import {
  type ModalRuntimeOptions,
  ModalRuntimeProvider,
  modalRuntime,
  modalRuntimePlugin,
  parseModalRuntimeOptions,
} from "../src/index.js";
import { emulatorOptions } from "./helpers.js";

const context = { logger: silentLogger, redactor: noopRedactor };

/** The issues of the INVALID_ARGUMENT `fn` throws. */
function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (isRuntimeError(err, "INVALID_ARGUMENT")) return (err.details?.issues as string[] | undefined) ?? [];
    throw err;
  }
  throw new Error("expected INVALID_ARGUMENT");
}

describe("one pipeline for the factory and the registry", () => {
  let emulator: ModalEmulator;
  beforeAll(async () => {
    emulator = await startModalEmulator({ strict: true });
  });
  afterAll(async () => {
    await emulator?.close();
  });

  const registry = new PluginRegistry().register(modalRuntimePlugin);
  const paths = {
    factory: (options: unknown) => modalRuntime(options as ModalRuntimeOptions, context),
    registry: (options: unknown) => registry.create("runtime", "modal", options, context),
    parse: (options: unknown) => parseModalRuntimeOptions(options as ModalRuntimeOptions),
  };

  it("renamed options, schema issues and the checks between options are refused the same way on every path", () => {
    for (const [path, make] of Object.entries(paths)) {
      expect(
        issuesOf(() => make({ memory: 512, poolSize: 2 })),
        path,
      ).toEqual(['memory: this option is now "memoryMiB"', 'poolSize: this option is now "pool.size"']);
      expect(
        issuesOf(() => make({ gpu: "Z100", memoryMiB: 1 })).map((i) => i.split(":")[0]),
        path,
      ).toEqual(["memoryMiB", "gpu"]);
      // validate: runs once every field is valid.
      expect(
        issuesOf(() =>
          make({
            idleTimeoutMs: 7_200_000,
            timeoutMs: 3_600_000,
            cpuCores: 2,
            cpuLimitCores: 1,
            memoryMiB: 1024,
            memoryLimitMiB: 512,
            credentials: { tokenId: "ak-12345678abc", tokenSecret: "as-12345678abc" },
            profile: "work",
          }),
        ),
        path,
      ).toEqual([
        "idleTimeoutMs: must not exceed timeoutMs (3600000)",
        "cpuLimitCores: must be at least cpuCores (2)",
        "memoryLimitMiB: must be at least memoryMiB (1024)",
        "profile: give either credentials or a profile, not both",
      ]);
    }
  });

  it("valid options give the same provider either way, with the GPU normalised", async () => {
    const options = emulatorOptions(emulator, { gpu: "l4 : 2" });
    const fromFactory = paths.factory(options);
    const fromRegistry = paths.registry(options);
    try {
      expect(fromRegistry).toBeInstanceOf(ModalRuntimeProvider);
      expect(fromFactory.options.gpu).toBe("L4:2");
      expect((fromRegistry as ModalRuntimeProvider).options.gpu).toBe("L4:2");
      expect(paths.parse(options).gpu).toBe("L4:2");
    } finally {
      await fromFactory.close();
      await fromRegistry.close();
    }
  });

  it("infers the options and instance types", () => {
    expectTypeOf<PluginOptions<typeof modalRuntimePlugin>>().toEqualTypeOf<ModalRuntimeOptions>();
    expectTypeOf<PluginInstance<typeof modalRuntimePlugin>>().toEqualTypeOf<ModalRuntimeProvider>();
    expectTypeOf<ModalRuntimeProvider>().toMatchTypeOf<RuntimeProvider>();
    expectTypeOf(modalRuntime).returns.toEqualTypeOf<ModalRuntimeProvider>();
    expectTypeOf(modalRuntimePlugin.kind).toEqualTypeOf<"runtime">();
  });
});
