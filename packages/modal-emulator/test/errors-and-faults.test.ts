import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { AlreadyExistsError, type ModalClient, NotFoundError, SandboxFilesystemNotFoundError } from "modal";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ModalEmulator, startModalEmulator } from "../src/index.js";
import { loadModalProtos } from "../src/proto/load.js";
import { clientFor } from "./helpers.js";

let emu: ModalEmulator;
let client: ModalClient;
const protoDir = mkdtempSync(join(tmpdir(), "modal-emulator-raw-"));
const protos = loadModalProtos(protoDir);

beforeAll(async () => {
  emu = await startModalEmulator({ secrets: { present: { A: "1" } }, routerJwtTtlMs: 1000 });
  client = clientFor(emu);
});
afterAll(async () => {
  await emu.close();
  rmSync(protoDir, { recursive: true, force: true });
});

async function newSandbox(params: Parameters<ModalClient["sandboxes"]["create"]>[2] = {}, c = client) {
  const app = await c.apps.fromName("errors", { createIfMissing: true });
  return c.sandboxes.create(app, c.images.fromRegistry("alpine:3.21"), params);
}

/** Calls a unary method on a raw grpc-js client (the SDK refuses to send calls without credentials). */
function rawCall(
  target: Client,
  method: string,
  request: object,
  metadata = new Metadata(),
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const fn = (target as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
    fn.call(target, request, metadata, (err: ServiceError | null, res: unknown) =>
      err ? reject(err) : resolve(res),
    );
  });
}

function authMetadata(tokenSecret = emu.tokenSecret): Metadata {
  const md = new Metadata();
  md.set("x-modal-token-id", emu.tokenId);
  md.set("x-modal-token-secret", tokenSecret);
  return md;
}

describe("SDK errors map from precise gRPC statuses", () => {
  test("NotFoundError: missing app, sandbox name, named secret, and a secret without a required key", async () => {
    await expect(client.apps.fromName("no-such-app")).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.sandboxes.fromName("errors", "no-such-sandbox")).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(client.secrets.fromName("no-such-secret")).rejects.toBeInstanceOf(NotFoundError);
    const missingKey = client.secrets.fromName("present", { requiredKeys: ["A", "B"] });
    await expect(missingKey).rejects.toBeInstanceOf(NotFoundError);
    await expect(missingKey).rejects.toThrow(/missing key\(s\): B/);
    expect((await client.secrets.fromName("present", { requiredKeys: ["A"] })).secretId).toMatch(/^st-/);
  });

  test("an unknown sandbox id is NOT_FOUND; a finished sandbox's filesystem is NotFoundError", async () => {
    const ghost = await client.sandboxes.fromId("sb-0000000000000000000000-v2");
    await expect(ghost.poll()).rejects.toMatchObject({ code: status.NOT_FOUND });

    const sb = await newSandbox();
    await sb.terminate({ wait: true });
    await expect(sb.exec(["true"])).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(sb.filesystem.readText("/etc/hostname")).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.sandboxes.fromId(sb.sandboxId).then((h) => h.exec(["true"]))).rejects.toThrow(
      /already finished/,
    );
  });

  test("AlreadyExistsError: a second running sandbox with the same name in the app (V1: strict mode refuses names on V2)", async () => {
    const name = `dup-${Date.now()}`;
    const v1 = clientFor(emu, "v1");
    const first = await newSandbox({ name }, v1);
    await expect(newSandbox({ name }, v1)).rejects.toBeInstanceOf(AlreadyExistsError);
    // Once the first is gone the name is free again.
    await first.terminate({ wait: true });
    const second = await newSandbox({ name }, v1);
    await second.terminate();
    v1.close();
  });

  test("invalid definitions are INVALID_ARGUMENT, not silently accepted", async () => {
    await expect(newSandbox({ timeoutMs: 25 * 60 * 60 * 1000 })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
  });

  test("SandboxFilesystemNotFoundError for a missing file", async () => {
    const sb = await newSandbox();
    await expect(sb.filesystem.readText("/workspace/nope.txt")).rejects.toBeInstanceOf(
      SandboxFilesystemNotFoundError,
    );
    await sb.terminate();
  });
});

describe("fault injection", () => {
  test("failNext: a transient status is retried by the SDK; a precise one surfaces", async () => {
    emu.faults.failNext("SandboxCreateV2", "UNAVAILABLE", 2);
    const sb = await newSandbox();
    emu.faults.failNext("TaskExecStart", status.UNAVAILABLE, 3);
    const p = await sb.exec(["echo", "retried"]);
    expect(await p.stdout.readText()).toBe("retried\n");

    emu.faults.failNext("SandboxCreateV2", "RESOURCE_EXHAUSTED", 1, "no capacity (injected)");
    await expect(newSandbox()).rejects.toThrow(/no capacity \(injected\)/);
    emu.faults.failNext("TaskExecStart", "PERMISSION_DENIED");
    await expect(sb.exec(["true"])).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    await sb.terminate();
    expect(() => emu.faults.failNext("X", "NOT_A_STATUS")).toThrow(/unknown gRPC status/);
  });

  test("delayCreates slows sandbox creation", async () => {
    emu.faults.delayCreates(400);
    const t0 = Date.now();
    const sb = await newSandbox();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    emu.faults.delayCreates(0);
    await sb.terminate();
  });

  test("failImageBuilds fails the next build through the build log stream; the next build works", async () => {
    emu.faults.failImageBuilds(1, "apt-get exploded");
    const app = await client.apps.fromName("errors", { createIfMissing: true });
    const image = client.images.fromRegistry("debian:12").dockerfileCommands([`RUN echo ${Date.now()}`]);
    await expect(client.sandboxes.create(app, image)).rejects.toThrow(
      /Image build for im-\w+ failed[\s\S]*apt-get exploded/,
    );
    const sb = await client.sandboxes.create(app, image);
    await sb.terminate();
  });

  test("evict kills a running sandbox as the platform would", async () => {
    const sb = await newSandbox();
    expect(emu.faults.evict(sb.sandboxId)).toBe(true);
    expect(await sb.wait()).toBe(137);
    expect(emu.listSandboxes().find((s) => s.sandboxId === sb.sandboxId)?.result).toEqual({
      status: "INTERNAL_FAILURE",
      exitCode: 137,
    });
    expect(emu.faults.evict(sb.sandboxId)).toBe(false);
    const other = await newSandbox();
    emu.faults.evict(other.sandboxId, "MEMORY_MANAGER_EVICTION");
    await other.wait();
    expect(emu.listSandboxes().find((s) => s.sandboxId === other.sandboxId)?.result?.status).toBe(
      "MEMORY_MANAGER_EVICTION",
    );
  });
});

describe("auth", () => {
  test("control-plane calls without or with a wrong token are UNAUTHENTICATED", async () => {
    const raw = new protos.modalClient(emu.serverUrl.replace("http://", ""), credentials.createInsecure());
    await expect(rawCall(raw, "AppGetOrCreate", { app_name: "x" })).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    await expect(
      rawCall(raw, "AppGetOrCreate", { app_name: "x" }, authMetadata("wrong")),
    ).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    expect(
      await rawCall(raw, "AppGetOrCreate", { app_name: "x", object_creation_type: 1 }, authMetadata()),
    ).toEqual({
      app_id: expect.stringMatching(/^ap-/),
    });
    // Server-streaming calls fail with precise statuses too.
    const stream = (raw as unknown as Record<string, (r: object, m: Metadata) => NodeJS.EventEmitter>)[
      "ImageJoinStreaming"
    ]!.call(raw, { image_id: "im-missing" }, authMetadata());
    stream.on("data", () => {});
    await expect(new Promise((_, reject) => stream.on("error", reject))).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
    raw.close();

    process.env["MODAL_SERVER_URL"] = emu.serverUrl;
    const { ModalClient } = await import("modal");
    const wrong = new ModalClient({ tokenId: emu.tokenId, tokenSecret: "not-the-secret" });
    delete process.env["MODAL_SERVER_URL"];
    await expect(wrong.apps.fromName("x", { createIfMissing: true })).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
  });

  test("router calls need a valid Bearer JWT for their task; the SDK refreshes an expiring one", async () => {
    const sb = await newSandbox();
    const access = (await rawCall(
      new protos.modalClient(emu.serverUrl.replace("http://", ""), credentials.createInsecure()),
      "SandboxGetCommandRouterAccess",
      { sandbox_id: sb.sandboxId },
      authMetadata(),
    )) as { jwt: string; url: string };
    expect(access.url).toBe(emu.routerUrl);
    const router = new protos.taskCommandRouter(
      emu.routerUrl.replace("https://", ""),
      credentials.createInsecure(),
    );
    const bearer = (jwt: string): Metadata => {
      const md = new Metadata();
      md.set("authorization", `Bearer ${jwt}`);
      return md;
    };
    const taskId = emu.listSandboxes().find((s) => s.sandboxId === sb.sandboxId)!.taskId;
    const req = { task_id: taskId, exec_id: "none" };
    await expect(rawCall(router, "TaskExecPoll", req)).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    await expect(rawCall(router, "TaskExecPoll", req, bearer("a.b.c"))).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    await expect(
      rawCall(router, "TaskExecPoll", { ...req, task_id: "ta-other" }, bearer(access.jwt)),
    ).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    await expect(rawCall(router, "TaskExecPoll", req, bearer(access.jwt))).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
    // routerJwtTtlMs is 1 s here (exp rounds up to the next second): after it the old token is rejected, and
    // the SDK fetches a new one.
    await new Promise((r) => setTimeout(r, 2050));
    await expect(rawCall(router, "TaskExecPoll", req, bearer(access.jwt))).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    const p = await sb.exec(["echo", "fresh token"]);
    expect(await p.stdout.readText()).toBe("fresh token\n");
    router.close();
    await sb.terminate();
  });
});
