import { readFileSync } from "node:fs";
import { actionServerBinPath } from "@agent-runtime/action-server";
import { fromRegistry } from "@agent-runtime/image-builder";
import { runRuntimeConformance } from "@agent-runtime/runtime-core/testing";
import { describe, it } from "vitest";
import { type DockerRuntimeOptions, dockerRuntime } from "../src/index.js";
import { found, skipNote, testOptions } from "./helpers.js";

if (found.skip) {
  describe(`runtime-docker conformance${skipNote}`, () => {
    it.skip("needs a container engine", () => {});
  });
} else {
  // Socket mode runs on an image with python3 (run_ipython keeps state); port mode on the default recipe, without
  // ipython (run_ipython is UNSUPPORTED). Every test of the kit runs in both modes; none is skipped.
  const withPython = fromRegistry(found.baseImage)
    .aptInstall(["python3"])
    .withActionServer({ strategy: "inline", bundle: readFileSync(actionServerBinPath(), "utf8") })
    .build();
  for (const connect of ["socket", "port"] as const) {
    const base: DockerRuntimeOptions =
      connect === "socket"
        ? { connect, image: withPython as unknown as Record<string, unknown>, ipython: true }
        : { connect };
    const capabilities = dockerRuntime(testOptions(base)).capabilities;
    runRuntimeConformance({
      name: `runtime-docker (connect: ${connect})`,
      capabilities,
      create: ({ sessionId, context, noChangeTimeoutSeconds }) =>
        dockerRuntime(testOptions({ ...base, noChangeTimeoutSeconds }), context).create({ sessionId }),
      attach: (handle, { context }) => dockerRuntime(testOptions(base), context).attach(handle),
      testTimeoutMs: 120_000,
    });
  }
}
