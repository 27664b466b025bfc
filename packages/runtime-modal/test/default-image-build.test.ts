import { randomBytes } from "node:crypto";
import type { DockerEngine } from "@agent-runtime/docker-engine";
import { engineForTests } from "@agent-runtime/docker-engine/testing";
import {
  buildWithEngine,
  fromRegistry,
  imageTags,
  isImageBuilderError,
  serverLaunch,
} from "@agent-runtime/image-builder";
import { ActionExecutionClient, cmdRun } from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { defaultImageSpec } from "../src/image.js";

// The proof that the recipe runtime-modal sends to Modal works: the very spec of defaultImageSpec(), with only
// its base swapped for the clean Debian trixie image (no node, no curl; its apt nodejs is 20), built through a
// real container engine and started with the server command runtime-modal would run.

const found = await engineForTests();
const run = `${process.pid}-${Date.now()}`;
const LABEL = "agent-runtime.test";
const TEST_REPOSITORY = "localhost/agent-runtime-test/runtime-modal";

describe.skipIf(found.skip !== undefined)(
  `the default image recipe, built for real${found.skip ? ` (skipped: ${found.skip})` : ""}`,
  () => {
    const engine = found.engine as DockerEngine;
    /** Test-only images; the default recipe's image is kept, so later runs reuse it. */
    const testImages: string[] = [];
    let client: ActionExecutionClient | undefined;

    afterAll(async () => {
      client?.close();
      for (const c of await engine.listContainers({ labels: { [LABEL]: run }, all: true }))
        await engine.removeContainer(c.Id);
      for (const image of testImages) await engine.removeImage(image, { force: true });
    });

    it("builds on the clean Debian base, and its server answers /alive and runs `echo hi`", async () => {
      const spec = defaultImageSpec(found.baseImage);
      expect(spec.steps).toEqual(defaultImageSpec().steps);
      expect(spec.server).toEqual(defaultImageSpec().server);

      const started = performance.now();
      const built = await buildWithEngine(spec, { engine });
      console.info(
        `default recipe on ${found.baseImage}: ${built.built ? "built" : "existed"} in ${Math.round(performance.now() - started)} ms (${built.image})`,
      );
      expect(await engine.inspectImage(built.image)).toBeDefined();

      const launch = serverLaunch(spec);
      expect(launch.kind).toBe("agent-runtime");
      const portKey = `${launch.port}/tcp`;
      const sessionApiKey = randomBytes(24).toString("base64url");
      const id = await engine.createContainer(
        {
          Image: built.image,
          Cmd: launch.argv,
          ...(launch.cwd !== undefined ? { WorkingDir: launch.cwd } : {}),
          Env: [`SESSION_API_KEY=${sessionApiKey}`],
          Labels: { [LABEL]: run },
          ExposedPorts: { [portKey]: {} },
          HostConfig: { PortBindings: { [portKey]: [{ HostIp: "127.0.0.1", HostPort: "" }] } },
        },
        { name: `ar-default-image-${run}` },
      );
      await engine.startContainer(id);
      const info = await engine.inspectContainer(id);
      const hostPort = info?.NetworkSettings?.Ports?.[portKey]?.[0]?.HostPort;
      expect(hostPort, JSON.stringify(info?.NetworkSettings?.Ports)).toMatch(/^\d+$/);
      const baseUrl = `http://127.0.0.1:${hostPort}`;

      // /alive answers 200 once the server is up (poll until a deadline; say what the container printed if not).
      const deadline = Date.now() + 60_000;
      let last = "no answer yet";
      for (;;) {
        try {
          const res = await fetch(`${baseUrl}/alive`, { signal: AbortSignal.timeout(3000) });
          last = `${res.status} ${await res.text()}`;
          if (res.status === 200) break;
        } catch (err) {
          last = String(err);
        }
        if (Date.now() > deadline) {
          const logs = await engine.containerLogs(id, { tail: 30 });
          throw new Error(
            `/alive did not answer 200 within 60 s (last: ${last}); container output:\n${logs}`,
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }

      // The key is required: without it, the server refuses the action.
      const refused = await fetch(`${baseUrl}/execute_action`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ action: { action: "run", args: { command: "echo no" } } }),
      });
      expect(refused.status).toBe(403);

      client = new ActionExecutionClient({ baseUrl, sessionApiKey });
      const obs = await client.executeAction(cmdRun("echo hi"));
      expect(obs.content.trim()).toBe("hi");
      expect(obs.observation).toBe("run");
      expect(obs.observation === "run" ? obs.extras.metadata.exit_code : undefined).toBe(0);
    }, 600_000);

    it("on a base whose Node.js is too old (18, as bookworm's apt gives), the build fails saying so", async () => {
      // A cheap stand-in for bookworm: the trixie base with a `node` that says v18 and an apt-get that, like
      // bookworm's, cannot bring anything newer (it installs nothing).
      const fakeNode = `#!/bin/sh\ncase "$1" in -p|-e) echo 18 ;; *) echo v18.19.0 ;; esac\n`;
      const fakeApt = `#!/bin/sh\necho "apt-get $* (stand-in: bookworm's nodejs is 18)"\n`;
      const write = (path: string, text: string) =>
        `echo ${Buffer.from(text).toString("base64")} | base64 -d > ${path} && chmod 755 ${path}`;
      const oldBase = await buildWithEngine(
        fromRegistry(found.baseImage)
          .run(`${write("/usr/local/bin/node", fakeNode)} && ${write("/usr/local/bin/apt-get", fakeApt)}`)
          .env({ AGENT_RUNTIME_TEST_RUN: run })
          .build(),
        { engine, repository: TEST_REPOSITORY },
      );
      testImages.push(oldBase.image);

      const spec = defaultImageSpec(oldBase.image);
      const lines: string[] = [];
      const err = await buildWithEngine(spec, {
        engine,
        repository: TEST_REPOSITORY,
        onLog: (l) => lines.push(l),
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      testImages.push(`${TEST_REPOSITORY}:${imageTags(spec).sourceTag}`);
      expect(isImageBuilderError(err, "BUILD_FAILED"), String(err)).toBe(true);
      const message = (err as Error).message;
      expect(message).toContain(
        "agent-runtime image-builder: the action-server needs Node.js >= 20 (supported lines: 20, 22, 24), the image has v18.19.0",
      );
      expect(message).toContain("Last lines of the build log:");
      expect(lines.some((l) => l.includes("needs Node.js >= 20"))).toBe(true);
    }, 300_000);
  },
);
