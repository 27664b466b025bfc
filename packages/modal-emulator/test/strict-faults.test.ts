import { get } from "node:https";
import { status } from "@grpc/grpc-js";
import type { ModalClient } from "modal";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ModalEmulator, startModalEmulator } from "../src/index.js";
import { clientFor, eventually, RawControlPlane } from "./helpers.js";

// Strict mode's tunnels, and the faults a test injects to see how a client copes with Modal's slow-downs,
// capacity errors and image builds that never end or fail with a log.

let emu: ModalEmulator;
let client: ModalClient;
let raw: RawControlPlane;

beforeAll(async () => {
  emu = await startModalEmulator({ strict: true });
  client = clientFor(emu);
  raw = new RawControlPlane(emu);
});
afterAll(async () => {
  client?.close();
  raw?.close();
  await emu?.close();
});

async function app() {
  return client.apps.fromName("strict-faults", { createIfMissing: true });
}

function httpsGet(url: string): Promise<{ body?: string; code?: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    get(url, { ca: emu.caCertPem, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => {
        body += d.toString();
      });
      res.on("end", () => resolve({ body, ms: Date.now() - t0 }));
    }).on("error", (err: NodeJS.ErrnoException) => resolve({ code: err.code, ms: Date.now() - t0 }));
  });
}

test("a tunnel exists before the server listens: connecting then is reset at once, not held until it listens", async () => {
  const server = `setTimeout(() => require("node:http").createServer((q, s) => s.end("up"))
    .listen(Number(process.env.PORT), "0.0.0.0"), 5000)`;
  const sb = await client.sandboxes.create(await app(), client.images.fromRegistry("node:20"), {
    command: ["node", "-e", server],
    env: { PORT: "8070" },
    encryptedPorts: [8070],
  });
  // The tunnel came with the create reply (V2): no waiting for the server.
  const tunnel = (await sb.tunnels())[8070]!;
  const early = await httpsGet(tunnel.url);
  expect(early.code).toBe("ECONNRESET");
  // Held until the server listens would take up to 5 s.
  expect(early.ms).toBeLessThan(3000);
  let later: { body?: string } = {};
  await eventually(async () => {
    later = await httpsGet(tunnel.url);
    return later.body !== undefined;
  }, 10_000);
  expect(later.body).toBe("up");
  await sb.terminate();
});

describe("throttling (RPCRetryPolicy in grpc-status-details-bin)", () => {
  test("the SDK obeys the slow-down: it waits retry_after_secs and sends the call again", async () => {
    const a = await app();
    const image = await client.images.fromRegistry("alpine:3.21").build(a);
    emu.faults.throttle("SandboxCreateV2", 3, 0.25);
    const t0 = Date.now();
    const sb = await client.sandboxes.create(a, image);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    await sb.terminate();
  });

  test("with maxThrottleWaitSecs the SDK gives up and the throttle's status surfaces; 0 ignores the policy", async () => {
    const a = await app();
    const image = await client.images.fromRegistry("alpine:3.21").build(a);
    const bounded = clientFor(emu, "v2", { maxThrottleWaitSecs: 1 });
    const never = clientFor(emu, "v2", { maxThrottleWaitSecs: 0 });
    try {
      emu.faults.throttle("SandboxCreateV2", 100, 0.4);
      const t0 = Date.now();
      await expect(bounded.sandboxes.create(a, image)).rejects.toMatchObject({
        code: status.RESOURCE_EXHAUSTED,
      });
      const waited = Date.now() - t0;
      expect(waited).toBeGreaterThanOrEqual(600);
      expect(waited).toBeLessThan(3000);
      // A long slow-down, so that obeying it (which 0 must not) cannot pass for a slow machine.
      emu.faults.reset();
      emu.faults.throttle("SandboxCreateV2", 100, 5);
      const t1 = Date.now();
      await expect(never.sandboxes.create(a, image)).rejects.toMatchObject({
        code: status.RESOURCE_EXHAUSTED,
      });
      expect(Date.now() - t1).toBeLessThan(2500);
    } finally {
      emu.faults.reset();
      bounded.close();
      never.close();
    }
  });

  test("bad throttle arguments are refused", () => {
    expect(() => emu.faults.throttle("X", 0)).toThrow(/n must be >= 1/);
    expect(() => emu.faults.throttle("X", 1, -1)).toThrow(/retryAfterSecs must be >= 0/);
  });
});

test("failCreates: RESOURCE_EXHAUSTED on the next N creates, V1 or V2 alike, then creates work again", async () => {
  const a = await app();
  const image = client.images.fromRegistry("alpine:3.21");
  const v1 = clientFor(emu, "v1");
  try {
    emu.faults.failCreates(2, "RESOURCE_EXHAUSTED", "no capacity in us-east (injected)");
    await expect(client.sandboxes.create(a, image)).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      message: expect.stringMatching(/no capacity in us-east/),
    });
    await expect(v1.sandboxes.create(a, image, { gpu: "H100" })).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
    });
    const sb = await client.sandboxes.create(a, image);
    await sb.terminate();
  } finally {
    v1.close();
  }
});

describe("image builds", () => {
  test("a build that never finishes: image.build() does not return; the join stream ends each window without a result", async () => {
    const a = await app();
    emu.faults.hangImageBuilds(2);
    const build = client.images
      .fromRegistry("debian:12")
      .dockerfileCommands([`RUN echo ${Date.now()}`])
      .build(a);
    build.catch(() => {}); // rejected when the client closes
    const outcome = await Promise.race([
      build.then(() => "built"),
      new Promise((r) => setTimeout(() => r("still building"), 1500)),
    ]);
    expect(outcome).toBe("still building");

    // Through the wire: a layer of its own, its log streamed, no result.
    const created = await raw.unary<{ image_id: string; result?: unknown }>("ImageGetOrCreate", {
      app_id: a.appId,
      image: { dockerfile_commands: ["FROM alpine:3.21", `RUN echo hang ${Date.now()}`] },
    });
    expect(created.result).toBeUndefined();
    const items = await raw.stream<{ task_logs?: { data: string }[]; result?: unknown }>(
      "ImageJoinStreaming",
      {
        image_id: created.image_id,
        timeout: 0.3,
      },
    );
    expect(items.flatMap((i) => i.task_logs ?? []).map((l) => l.data)).toEqual([
      "Step 1/2 : FROM alpine:3.21\n",
      expect.stringMatching(/^Step 2\/2 : RUN echo hang/),
    ]);
    expect(items.some((i) => i.result)).toBe(false);
  });

  test("a failed build carries the exception; its log (tail) is served when asked for with include_logs_for_finished", async () => {
    const a = await app();
    // The base layer builds; the next one fails.
    const base = await client.images.fromRegistry("ubuntu:24.04").build(a);
    emu.faults.failImageBuilds(1, "E: Unable to locate package nope", {
      log: "Reading package lists...\nBuilding dependency tree...",
    });
    const image = base.dockerfileCommands(["RUN apt-get install -y nope"]);
    const err = (await image.build(a).catch((e: unknown) => e)) as Error;
    const match =
      /Image build for (im-\w+) failed with the exception:\nE: Unable to locate package nope/.exec(
        err.message,
      );
    expect(match, err.message).not.toBeNull();
    const imageId = match![1]!;

    const logsOf = async (include: boolean) =>
      (
        await raw.stream<{ task_logs?: { data: string }[]; result?: { status: number; exception: string } }>(
          "ImageJoinStreaming",
          { image_id: imageId, timeout: 1, include_logs_for_finished: include },
        )
      )
        .flatMap((i) => i.task_logs ?? [])
        .map((l) => l.data);
    // Strict: a finished build's log only on request (Python client's Image._logs sets the flag).
    expect(await logsOf(false)).toEqual([]);
    expect(await logsOf(true)).toEqual([
      "Step 1/2 : FROM base\n",
      "Step 2/2 : RUN apt-get install -y nope\n",
      "Reading package lists...\n",
      "Building dependency tree...\n",
      "E: Unable to locate package nope\n",
    ]);
  });
});
