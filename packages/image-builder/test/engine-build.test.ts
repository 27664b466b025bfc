import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DockerEngine } from "@agent-runtime/docker-engine";
import { engineForTests } from "@agent-runtime/docker-engine/testing";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { runCli } from "../src/cli.js";
import {
  buildWithEngine,
  fromRegistry,
  IMAGE_SOURCE_TAG_LABEL,
  type ImageSpec,
  isImageBuilderError,
} from "../src/index.js";
import { tempDir } from "./helpers.js";

// Real builds through the container engine the suite runs against (Podman's Docker-compatible service in CI),
// on the clean Debian base image (no node, no curl). Each run's specs carry a marker, so their tags are new.

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Runs the CLI in-process on `spec`, written to a temporary spec.json. */
async function cli(argv: string[], spec: unknown) {
  const { dir, cleanup } = tempDir("image-builder-engine-");
  cleanups.push(cleanup);
  writeFileSync(join(dir, "spec.json"), JSON.stringify(spec));
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    cwd: dir,
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

const found = await engineForTests();
const run = `${process.pid}-${Date.now()}`;
const REPOSITORY = "localhost/agent-runtime-test/image-builder";

/** A spec on the test base whose run step prints `marker` (so each run's tag is new) and runs `then`. */
function specWith(marker: string, then = "true"): ImageSpec {
  return fromRegistry(found.baseImage)
    .run(`echo "step-says-${marker}" && echo ${marker} > /etc/marker && ${then}`)
    .build();
}

describe("agent-runtime-image build: without a reachable engine", () => {
  it("an unreachable engine address is UNAVAILABLE naming the address and how to start an engine", async () => {
    const address = `unix:///tmp/no-engine-${randomBytes(6).toString("hex")}/docker.sock`;
    const r = await cli(
      ["build", "spec.json", "--engine", "docker", "--engine-address", address],
      specWith(run),
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("UNAVAILABLE");
    expect(r.stderr).toContain(`The container engine at ${address} cannot be reached`);
    expect(r.stderr).toContain("podman system service");
  });

  it("--engine accepts only docker: anything else is a usage error naming the allowed value", async () => {
    const r = await cli(["build", "spec.json", "--engine", "podman-cli"], specWith(run));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain('--engine "podman-cli" is not supported; the allowed value is docker');
    expect(r.stderr).toContain("Run agent-runtime-image --help for usage.");
  });

  it("build-only options elsewhere, and a bad --timeout-ms, are usage errors", async () => {
    const other = await cli(["validate", "spec.json", "--engine-address", "unix:///x.sock"], specWith(run));
    expect(other).toMatchObject({ code: 2, stdout: "" });
    expect(other.stderr).toContain("--engine, --engine-address and --timeout-ms only apply to build");
    const timeout = await cli(["build", "spec.json", "--timeout-ms", "soon"], specWith(run));
    expect(timeout).toMatchObject({ code: 2, stdout: "" });
    expect(timeout.stderr).toContain("--timeout-ms must be a positive integer");
  });

  it("the help text documents the build command and its options", async () => {
    const r = await cli(["--help"], {});
    for (const text of ["build <spec>", "--engine <kind>", "--engine-address <addr>", "--timeout-ms <n>"])
      expect(r.stdout).toContain(text);
  });
});

describe.skipIf(found.skip !== undefined)(
  `agent-runtime-image build: against a real engine${found.skip ? ` (skipped: ${found.skip})` : ""}`,
  () => {
    const engine = found.engine as DockerEngine;
    const images: string[] = [];
    const base = ["--engine", "docker", "--engine-address", engine.address, "--repository", REPOSITORY];

    afterAll(async () => {
      for (const image of images) await engine.removeImage(image, { force: true });
    });

    it("builds a spec and prints { image, imageId, built: true }; the same spec again builds nothing", async () => {
      const spec = specWith(`ok-${run}`);
      const first = await cli(["build", "spec.json", ...base], spec);
      expect(first.code, first.stderr).toBe(0);
      const result = JSON.parse(first.stdout) as { image: string; imageId: string; built: boolean };
      images.push(result.image);
      expect(Object.keys(result).sort()).toEqual(["built", "image", "imageId"]);
      expect(result.built).toBe(true);
      expect(result.image).toMatch(new RegExp(`^${REPOSITORY}:ar_v1_[a-z0-9]+_[a-z0-9]+$`));
      // The build log streamed to stderr, the step's own output among it.
      expect(first.stderr).toContain(`step-says-ok-${run}`);
      const inspected = await engine.inspectImage(result.image);
      expect(inspected?.Id.replace(/^sha256:/, "")).toBe(result.imageId.replace(/^sha256:/, ""));
      expect(inspected?.Config?.Labels?.[IMAGE_SOURCE_TAG_LABEL]).toBe(result.image.split(":").pop());

      const second = await cli(["build", "spec.json", ...base], spec);
      expect(second.code, second.stderr).toBe(0);
      // Nothing built: no log at all, the same image.
      expect(second.stderr).toBe("");
      expect(JSON.parse(second.stdout)).toEqual({ ...result, built: false });

      // --force builds again (from the engine's layer cache) and streams a log.
      const forced = await cli(["build", "spec.json", ...base, "--force"], spec);
      expect(forced.code, forced.stderr).toBe(0);
      expect(JSON.parse(forced.stdout)).toMatchObject({ image: result.image, built: true });
      expect(forced.stderr).not.toBe("");
    }, 180_000);

    it("a run step that exits non-zero is BUILD_FAILED (exit 1) with the step's output, and tags nothing", async () => {
      const spec = specWith(`fail-${run}`, "exit 3");
      const r = await cli(["build", "spec.json", ...base], spec);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("agent-runtime-image: spec.json: BUILD_FAILED: Building ");
      expect(r.stderr).toContain("Last lines of the build log:");
      // Once streamed, once in the error's log tail.
      expect(r.stderr.split(`step-says-fail-${run}`).length - 1).toBeGreaterThanOrEqual(2);
      const image = r.stderr.match(/Building (\S+) failed/)?.[1];
      expect(image).toBeDefined();
      images.push(image as string);
      expect(await engine.inspectImage(image as string)).toBeUndefined();
    }, 180_000);

    it("a build past its deadline is TIMEOUT with the log so far (API), and tags nothing", async () => {
      const spec = specWith(`slow-${run}`, "sleep 8");
      const lines: string[] = [];
      const building = buildWithEngine(spec, {
        engine,
        repository: REPOSITORY,
        timeoutMs: 2500,
        onLog: (line) => lines.push(line),
      });
      const err = await building.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isImageBuilderError(err, "TIMEOUT"), String(err)).toBe(true);
      const message = (err as Error).message;
      expect(message).toMatch(/took longer than 2500 ms \(raise timeoutMs, CLI --timeout-ms\)/);
      const image = message.match(/Building (\S+) took/)?.[1] as string;
      images.push(image);
      // The step had started: its output came through onLog and is in the message's log tail.
      expect(lines).toContain(`step-says-slow-${run}`);
      expect(message).toContain(`step-says-slow-${run}`);
      // The engine may finish the running step in the background (Podman does) but does not tag the image.
      await new Promise((r) => setTimeout(r, 9000));
      expect(await engine.inspectImage(image)).toBeUndefined();
    }, 60_000);

    it("a cancelled build is CANCELLED", async () => {
      const controller = new AbortController();
      controller.abort();
      const err = await buildWithEngine(specWith(`cancel-${run}`), {
        engine,
        repository: REPOSITORY,
        signal: controller.signal,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isImageBuilderError(err, "CANCELLED"), String(err)).toBe(true);
    }, 60_000);
  },
);
