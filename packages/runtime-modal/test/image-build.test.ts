import { randomBytes } from "node:crypto";
import { MAX_INLINE_RUN_BYTES } from "@agent-runtime/image-builder";
import { modalImagePlan } from "@agent-runtime/image-builder/modal";
import { type ModalEmulator, startModalEmulator } from "@agent-runtime/modal-emulator";
import { type Redactor, RuntimeStatus, type StatusEvent, silentLogger } from "@agent-runtime/runtime-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resolveImage } from "../src/image.js";
import { isModalImageBuildError } from "../src/image-build.js";
import { type ModalRuntimeOptions, ModalRuntimeOptionsSchema, modalRuntime } from "../src/index.js";
import { CallCounter } from "./call-counter.js";
import { emulatorOptions, errorOf } from "./helpers.js";

// Image builds through the real modal@0.11.1 SDK against the strict modal-emulator: bounded by
// imageBuildTimeoutMs, named as image build failures, with the build log's tail.

let emulator: ModalEmulator;
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  emulator = await startModalEmulator({ strict: true });
  // The base layer (FROM node:20-bookworm-slim) is built once here, so each test's fault hits its own steps.
  const p = modalRuntime(emulatorOptions(emulator), { logger: silentLogger });
  const runtime = await p.create({ sessionId: "base-layer" });
  await runtime.connect();
  await runtime.close();
  await p.close();
});
afterEach(async () => {
  emulator.faults.reset();
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
});
afterAll(async () => {
  await emulator?.close();
});

const SECRET = "build-secret-value-0123456789";
const redactor: Redactor = {
  isEmpty: false,
  redact: (text) => text.replaceAll(SECRET, "[redacted]"),
  redactDeep: <T>(value: T): T => JSON.parse(JSON.stringify(value).replaceAll(SECRET, "[redacted]")) as T,
};

/** An image spec no other test builds (the emulator keeps a hung build pending for its layers). */
function uniqueImage(): ModalRuntimeOptions["image"] {
  return {
    base: { kind: "registry", image: "node:20-bookworm-slim" },
    steps: [
      { kind: "apt-install", packages: ["git"] },
      { kind: "run", command: `echo build-${randomBytes(6).toString("hex")}` },
    ],
    server: { kind: "agent-runtime", install: { strategy: "preinstalled" } },
  };
}

async function start(extra: ModalRuntimeOptions, logger = silentLogger) {
  const p = modalRuntime(emulatorOptions(emulator, extra), { logger, redactor });
  opened.push(p);
  const runtime = await p.create({ sessionId: `build-${opened.length}` });
  opened.push(runtime);
  const events: StatusEvent[] = [];
  runtime.onStatus((e) => events.push(e));
  return { p, runtime, events };
}

const running = (appName: string) =>
  emulator.listSandboxes().filter((s) => s.appName === appName && s.running);

describe("an image build", () => {
  it("that never finishes fails within imageBuildTimeoutMs, naming the build, with the log so far", async () => {
    emulator.faults.hangImageBuilds(1);
    const { p, runtime, events } = await start({ image: uniqueImage(), imageBuildTimeoutMs: 2000 });
    const t0 = Date.now();
    const err = await errorOf(runtime.connect());
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(9000);
    expect(err.code).toBe("TIMEOUT");
    expect(isModalImageBuildError(err, "IMAGE_BUILD_TIMEOUT")).toBe(true);
    expect(err.message).toMatch(
      /^The Modal image im-\S+ did not finish building within imageBuildTimeoutMs \(2000 ms\); the build may still be running on Modal/,
    );
    expect(err.message).toContain("Raise imageBuildTimeoutMs, or use a prebuilt image");
    expect(err.message).toMatch(/\nLast \d+ lines of the build log:\n {2}\| Step 1\/\d+ : FROM base/);
    expect(err.message).toMatch(/\n {2}\| Step 2\/3 : RUN apt-get update && .*apt-get install -y .*git/);
    expect(err.details?.buildLog).toEqual(
      expect.arrayContaining([expect.stringMatching(/^Step 1\/\d+ : FROM base$/)]),
    );
    expect(events.map((e) => e.status)).toContain(RuntimeStatus.BUILDING_RUNTIME);
    expect(events.at(-1)?.status).toBe(RuntimeStatus.ERROR);
    // Nothing was created.
    expect(emulator.listSandboxes().filter((s) => s.appName === p.options.appName)).toEqual([]);
  });

  it("that fails shows the build log's tail (redacted) and says it is an image build failure", async () => {
    emulator.faults.failImageBuilds(
      1,
      "The command '/bin/sh -c apt-get install -y nosuchpackage' returned a non-zero code: 100",
      {
        log: [
          "Reading package lists...",
          "Building dependency tree...",
          `token=${SECRET}`,
          "E: Unable to locate package nosuchpackage",
        ].join("\n"),
      },
    );
    const { p, runtime } = await start({ image: uniqueImage() });
    const err = await errorOf(runtime.connect());
    expect(err.code).toBe("FAILED_PRECONDITION");
    expect(isModalImageBuildError(err, "IMAGE_BUILD_FAILED")).toBe(true);
    expect(err.message).toMatch(
      /^Building the Modal image failed: Image build for im-\S+ failed with the exception: The command '\/bin\/sh -c apt-get install -y nosuchpackage' returned a non-zero code: 100 \(fix the image spec; the build log is in the Modal dashboard\)\./,
    );
    // The strict emulator sends a finished build's log only when asked (includeLogsForFinished), as Modal does.
    expect(err.message).toContain("  | E: Unable to locate package nosuchpackage");
    expect(err.message).toContain("  | token=[redacted]");
    expect(err.message).not.toContain(SECRET);
    expect(JSON.stringify(err.toJSON())).not.toContain(SECRET);
    const log = err.details?.buildLog as string[];
    expect(log.at(-2)).toBe("E: Unable to locate package nosuchpackage");
    expect(log.length).toBeLessThanOrEqual(30);
    expect(running(p.options.appName)).toEqual([]);
    // The failure is not cached: the next start builds again, and works.
    const again = await p.create({ sessionId: "after-failed-build" });
    opened.push(again);
    await again.connect();
    expect((await again.runCommand("echo ok")).content.trim()).toBe("ok");
  });

  it("that fails against modal-emulator is not blamed on the server command (no emulator hint)", async () => {
    emulator.faults.failImageBuilds(1, "exit code 2");
    const { runtime } = await start({ image: uniqueImage(), serverCommand: undefined });
    const err = await errorOf(runtime.connect());
    expect(isModalImageBuildError(err, "IMAGE_BUILD_FAILED")).toBe(true);
    expect(err.message).not.toContain("loopback address (modal-emulator)");
  });

  it("whose log stream drops (UNAVAILABLE, which the SDK does not retry on streams) is joined again and goes on", async () => {
    emulator.faults.failNext("ImageJoinStreaming", "UNAVAILABLE", 1);
    const log = new CallCounter();
    const { runtime, events } = await start({ image: uniqueImage() }, log.logger);
    await runtime.connect();
    expect(log.debugs).toContain("following the Modal image build failed; joining it again");
    expect(events.map((e) => e.status)).toContain(RuntimeStatus.BUILDING_RUNTIME);
    expect((await runtime.runCommand("echo built")).content.trim()).toBe("built");
  });

  it("of the default image (the inline bundle) goes through in RUN lines of at most 16 KiB", async () => {
    const spec = resolveImage(ModalRuntimeOptionsSchema.parse({})).spec;
    const commands = modalImagePlan(spec).layers.flat();
    const total = commands.reduce((n, c) => n + Buffer.byteLength(c), 0);
    for (const command of commands)
      expect(Buffer.byteLength(command)).toBeLessThanOrEqual(MAX_INLINE_RUN_BYTES);
    const install = spec.server?.kind === "agent-runtime" ? spec.server.install : undefined;
    const bundleBytes = install?.strategy === "inline" ? Buffer.byteLength(install.bundle) : 0;
    expect(bundleBytes).toBeGreaterThan(500_000);
    // Deflated: well under half of the bundle (plain base64 was 4/3 of it).
    expect(total).toBeLessThan(bundleBytes * 0.4);
    // Against the emulator, the default image's layers are sent as they are (the emulator runs the host's server).
    const calls = new CallCounter();
    const { runtime } = await start(
      { image: undefined, serverCommand: undefined, sdkLogLevel: "debug" },
      calls.logger,
    );
    await runtime.connect();
    // Our build (one ImageGetOrCreate per layer), then the SDK's own build() finding each layer built.
    expect(calls.count("ImageGetOrCreate")).toBe(2 * (modalImagePlan(spec).layers.length + 1));
  });
});
