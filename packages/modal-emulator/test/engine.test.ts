import { randomBytes } from "node:crypto";
import type { DockerEngine } from "@agent-runtime/docker-engine";
import { engineForTests } from "@agent-runtime/docker-engine/testing";
import { type Logger, silentLogger } from "@agent-runtime/runtime-core";
import { DEFAULT_BASE_IMAGE, modalRuntime } from "@agent-runtime/runtime-modal";
import type { App, ModalClient } from "modal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli.js";
import {
  MANAGED_BY,
  MANAGED_BY_LABEL,
  type ModalEmulator,
  SANDBOX_LABEL,
  startModalEmulator,
} from "../src/index.js";
import { clientFor } from "./helpers.js";

const found = await engineForTests();
const run = randomBytes(4).toString("hex");
/** A registry base the engine cannot pull here, mapped onto the local Debian base. */
const REGISTRY_BASE = "debian:trixie-slim";

/** Records `modal-emulator: image built` events (which engine image, and whether it was built or found). */
function buildLog(): { logger: Logger; builds: { engineImage: string; built: boolean }[] } {
  const builds: { engineImage: string; built: boolean }[] = [];
  const quiet = (): void => {};
  return {
    builds,
    logger: {
      debug: quiet,
      warn: quiet,
      error: quiet,
      info: (message, fields) => {
        if (message === "modal-emulator: image built")
          builds.push({ engineImage: String(fields?.engineImage), built: fields?.built === true });
      },
    },
  };
}

describe("sandboxEngine option", () => {
  it("an engine that does not answer fails the start, naming the option and the address", async () => {
    const err = await startModalEmulator({
      sandboxEngine: { kind: "docker", address: "unix:///nonexistent-dir/engine.sock" },
    }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(err?.code).toBe("UNAVAILABLE");
    expect(err?.message).toMatch(
      /^modal-emulator options: sandboxEngine: .*unix:\/\/\/nonexistent-dir\/engine\.sock/,
    );
  });

  it("reports bad fields as path: message", async () => {
    await expect(
      startModalEmulator({
        sandboxEngine: { kind: "podman", repository: "Upper/Case" } as never,
      }),
    ).rejects.toThrow(
      /sandboxEngine\.kind: [\s\S]*sandboxEngine\.repository: must be a lower-case image repository/,
    );
  });
});

describe.skipIf(found.skip !== undefined)(
  `modal-emulator with a container engine${found.skip ? ` (skipped: ${found.skip})` : ""}`,
  () => {
    const engine = found.engine as DockerEngine;
    const log = buildLog();
    const sandboxIds: string[] = [];
    let emulator: ModalEmulator;
    let client: ModalClient;
    let app: App;

    beforeAll(async () => {
      emulator = await startModalEmulator({
        sandboxEngine: {
          kind: "docker",
          address: engine.address,
          baseImageMap: { [REGISTRY_BASE]: found.baseImage },
        },
        logger: log.logger,
      });
      client = clientFor(emulator);
      app = await client.apps.fromName(`engine-${run}`, { createIfMissing: true });
    });

    afterAll(async () => {
      client?.close();
      await emulator?.close();
      // Only the layers with this run's RUN line: the layer FROM the mapped base is the same in every run (and
      // the default recipe's layer is built on it), kept for the next run.
      for (const { engineImage } of log.builds) {
        const history = await engine
          .json<{ CreatedBy?: string }[]>("GET", `/images/${encodeURIComponent(engineImage)}/history`)
          .catch(() => []);
        if (history.some((h) => h.CreatedBy?.includes(run)))
          await engine.removeImage(engineImage, { force: true });
      }
    });

    const ownImage = () =>
      client.images.fromRegistry(REGISTRY_BASE).dockerfileCommands([`RUN echo built-${run} > /built.txt`]);

    it("builds the image for real and runs the sandbox as a container of it: exec, env and secrets, stdin", async () => {
      const sb = await client.sandboxes.create(app, ownImage(), {
        command: ["sleep", "infinity"],
        env: { PLAIN: "plain-value" },
        secrets: [await client.secrets.fromObject({ TOKEN: `secret-${run}` })],
        workdir: "/tmp",
      });
      sandboxIds.push(sb.sandboxId);
      // The base layer (FROM the mapped base) and the RUN layer, each its own engine image.
      expect(log.builds.length).toBe(2);

      const cat = await sb.exec(["cat", "/built.txt"]);
      expect(await cat.stdout.readText()).toBe(`built-${run}\n`);
      expect(await cat.wait()).toBe(0);

      const env = await sb.exec(["sh", "-c", 'echo "$PLAIN $TOKEN $(pwd)"; echo to-err >&2; exit 5']);
      expect(await env.stdout.readText()).toBe(`plain-value secret-${run} /tmp\n`);
      expect(await env.stderr.readText()).toBe("to-err\n");
      expect(await env.wait()).toBe(5);

      const cat2 = await sb.exec(["cat"]);
      await cat2.stdin.writeText("through stdin");
      await cat2.stdin.close();
      expect(await cat2.stdout.readText()).toBe("through stdin");
      expect(await cat2.wait()).toBe(0);

      const summary = emulator.listSandboxes().find((s) => s.sandboxId === sb.sandboxId);
      expect(summary?.containerId).toMatch(/^[0-9a-f]{12,}$/);
      const info = await engine.inspectContainer(summary!.containerId!);
      expect(info?.Config.Labels?.[MANAGED_BY_LABEL]).toBe(MANAGED_BY);
      expect(info?.Config.Image).toBe(log.builds[1]?.engineImage);
      await sb.terminate();
    }, 180_000);

    it("a second sandbox of the same image does not build again, here or in another emulator", async () => {
      const before = log.builds.length;
      const sb = await client.sandboxes.create(app, ownImage(), { command: ["sh", "-c", "exit 3"] });
      sandboxIds.push(sb.sandboxId);
      expect(await sb.wait()).toBe(3);
      const missing = await client.sandboxes.create(app, ownImage(), { command: ["no-such-command-here"] });
      sandboxIds.push(missing.sandboxId);
      expect(await missing.wait()).toBe(127);
      expect(await missing.stderr.readText()).toMatch(/no-such-command-here/);
      expect(log.builds.length).toBe(before);

      // A fresh emulator knows no images, but the engine has the tags: found, not built.
      const other = buildLog();
      const second = await startModalEmulator({
        sandboxEngine: {
          kind: "docker",
          address: engine.address,
          baseImageMap: { [REGISTRY_BASE]: found.baseImage },
        },
        logger: other.logger,
      });
      try {
        const c2 = clientFor(second);
        const app2 = await c2.apps.fromName(`engine-${run}`, { createIfMissing: true });
        const image = await c2.images
          .fromRegistry(REGISTRY_BASE)
          .dockerfileCommands([`RUN echo built-${run} > /built.txt`])
          .build(app2);
        expect(image.imageId).toMatch(/^im-/);
        expect(other.builds.length).toBeGreaterThan(0);
        expect(other.builds.every((b) => !b.built)).toBe(true);
        c2.close();
      } finally {
        await second.close();
      }
    }, 120_000);

    it("a failing RUN step fails the image build with its output in the error; faults still apply", async () => {
      const image = client.images
        .fromRegistry(REGISTRY_BASE)
        .dockerfileCommands([`RUN echo output-of-failing-step-${run}; exit 3`]);
      const err = await image.build(app).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(/^Image build for im-\S+ failed with the exception:\s/);
      expect(err?.message).toContain(`output-of-failing-step-${run}`);

      // An injected fault wins over the engine: the build fails as without one, nothing is built.
      const before = log.builds.length;
      emulator.faults.failImageBuilds(1, "injected build failure");
      const faulted = client.images.fromRegistry(REGISTRY_BASE).dockerfileCommands([`RUN echo never-${run}`]);
      await expect(faulted.build(app)).rejects.toThrow(/injected build failure/);
      expect(log.builds.length).toBe(before);
    }, 120_000);

    it("the CLI's --engine starts an emulator on the engine", async () => {
      const out: string[] = [];
      const { session, exitCode } = await runCli(
        [
          "--engine",
          `docker=${engine.address}`,
          "--engine-base-map",
          `${REGISTRY_BASE}=${found.baseImage}`,
          "--json",
        ],
        { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => out.push(t) } },
      );
      try {
        expect(exitCode).toBe(0);
        expect(JSON.parse(out.join(""))).toMatchObject({
          sandboxEngine: { kind: "docker", address: engine.address },
        });
      } finally {
        await session?.stop();
      }
    });

    it("terminate removes the container; close removes every container it made", async () => {
      const sb = await client.sandboxes.create(app, ownImage(), { command: ["sleep", "infinity"] });
      sandboxIds.push(sb.sandboxId);
      const mine = () => engine.listContainers({ labels: { [SANDBOX_LABEL]: sb.sandboxId }, all: true });
      expect((await mine()).length).toBe(1);
      await sb.terminate();
      await expect.poll(mine, { timeout: 30_000 }).toEqual([]);

      const left = await client.sandboxes.create(app, ownImage(), { command: ["sleep", "infinity"] });
      sandboxIds.push(left.sandboxId);
      await emulator.close();
      const managed = await engine.listContainers({ labels: { [MANAGED_BY_LABEL]: MANAGED_BY }, all: true });
      expect(managed.filter((c) => sandboxIds.includes(c.Labels?.[SANDBOX_LABEL] ?? ""))).toEqual([]);
    }, 120_000);
  },
);

describe.skipIf(found.skip !== undefined)(
  `runtime-modal on the emulator with a container engine${found.skip ? ` (skipped: ${found.skip})` : ""}`,
  () => {
    let emulator: ModalEmulator | undefined;
    afterAll(async () => {
      await emulator?.close();
    });

    it("builds the default action-server image for real (its base mapped onto Debian) and runs a command", async () => {
      const engine = found.engine as DockerEngine;
      emulator = await startModalEmulator({
        sandboxEngine: {
          kind: "docker",
          address: engine.address,
          baseImageMap: { [DEFAULT_BASE_IMAGE]: found.baseImage },
        },
      });
      // The first run builds the recipe (apt-get installs Node.js: about 40 s); later runs find its content tag.
      const provider = modalRuntime(
        {
          serverUrl: emulator.serverUrl,
          credentials: { tokenId: emulator.tokenId, tokenSecret: emulator.tokenSecret },
          caCertPem: emulator.caCertPem,
          appName: `engine-e2e-${run}`,
          imageBuildTimeoutMs: 600_000,
          // Against a loopback server runtime-modal runs the host's server bundle unless told otherwise: here
          // the image really has its own, on PATH (image-builder's ACTION_SERVER_COMMAND).
          serverCommand: ["agent-runtime-action-server"],
        },
        { logger: silentLogger },
      );
      try {
        const runtime = await provider.create({ sessionId: `engine-e2e-${run}` });
        try {
          await runtime.connect();
          const result = await runtime.runCommand("echo hi; cat /etc/debian_version");
          expect(result.content).toMatch(/^hi\n13\./);
        } finally {
          await runtime.close();
        }
      } finally {
        await provider.close();
      }
      const sandboxes = emulator.listSandboxes();
      expect(sandboxes.length).toBeGreaterThan(0);
      expect(sandboxes.every((s) => !s.running)).toBe(true);
    }, 600_000);
  },
);
