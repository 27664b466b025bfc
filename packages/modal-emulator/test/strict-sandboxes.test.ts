import { status } from "@grpc/grpc-js";
import { InvalidError, type ModalClient, type Sandbox } from "modal";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ModalEmulator, startModalEmulator } from "../src/index.js";
import { MAX_TAG_VALUE_LENGTH } from "../src/strict.js";
import { clientFor, RawControlPlane } from "./helpers.js";

// Strict mode through the real SDK: what V2 refuses or drops, list results without tags, Modal's GPU types,
// counts, regions, name and tag rules, and the V1 path (GPU creates, MODAL_SANDBOX_V2=0) that keeps every
// feature. Each rule's source is cited in src/strict.ts and the README.

let emu: ModalEmulator;
let v2: ModalClient;
let v1: ModalClient;
let raw: RawControlPlane;
const created: Sandbox[] = [];

beforeAll(async () => {
  emu = await startModalEmulator({ strict: true });
  v2 = clientFor(emu, "v2");
  v1 = clientFor(emu, "v1");
  raw = new RawControlPlane(emu);
});
afterAll(async () => {
  for (const sb of created) await sb.terminate().catch(() => {});
  v1?.close();
  v2?.close();
  raw?.close();
  await emu?.close();
});

const APP = "strict";

async function create(
  client: ModalClient,
  params: Parameters<ModalClient["sandboxes"]["create"]>[2] = {},
): Promise<Sandbox> {
  const app = await client.apps.fromName(APP, { createIfMissing: true });
  const sb = await client.sandboxes.create(app, client.images.fromRegistry("alpine:3.21"), params);
  created.push(sb);
  return sb;
}

async function ids(iterable: AsyncIterable<Sandbox>): Promise<string[]> {
  const out: string[] = [];
  for await (const sb of iterable) out.push(sb.sandboxId);
  return out;
}

/** `SandboxInfo.tags` of every sandbox a raw list returns (the SDK does not expose them). */
async function listedTags(method: "SandboxList" | "SandboxListV2", tags: Record<string, string>) {
  const app = await v2.apps.fromName(APP);
  const resp = await raw.unary<{ sandboxes?: { id: string; tags?: unknown[] }[] }>(method, {
    app_id: app.appId,
    tags: Object.entries(tags).map(([tag_name, tag_value]) => ({ tag_name, tag_value })),
  });
  return (resp.sandboxes ?? []).map((s) => ({ id: s.id, tags: s.tags ?? [] }));
}

test("the emulator reports strict mode", async () => {
  expect(emu.strict).toBe(true);
  expect(JSON.parse(JSON.stringify(emu))).toMatchObject({ strict: true });
});

describe("V2 sandboxes (SandboxCreateV2, the SDK default without a GPU)", () => {
  test("an idle timeout is INVALID_ARGUMENT naming the field and the V1 way out", async () => {
    const err = await create(v2, { idleTimeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(String((err as Error).message)).toMatch(/idle_timeout_secs is not supported by V2 sandboxes.*V1/);
  });

  test("a name is INVALID_ARGUMENT naming the field", async () => {
    const err = await create(v2, { name: `v2-named-${Date.now()}` }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(String((err as Error).message)).toMatch(/name is not supported by V2 sandboxes/);
  });

  test("tags are dropped: at create, by setTags, and getTags answers none; a tag filter never finds it", async () => {
    const unique = `v2tags${Date.now()}`;
    const sb = await create(v2, { tags: { batch: unique } });
    expect(sb.sandboxId).toMatch(/-v2$/);
    expect(await sb.getTags()).toEqual({});
    await sb.setTags({ batch: unique, role: "b" });
    expect(await sb.getTags()).toEqual({});
    expect(await ids(v2.sandboxes.list({ tags: { batch: unique } }))).toEqual([]);
    expect(emu.listSandboxes().find((s) => s.sandboxId === sb.sandboxId)?.tags).toEqual({});
  });

  test("the V1 SandboxList does not return V2 sandboxes; SandboxListV2 returns both", async () => {
    const app = await v2.apps.fromName(APP, { createIfMissing: true });
    const a = await create(v2);
    const b = await create(v1);
    const viaV1 = await ids(v1.sandboxes.list({ appId: app.appId })); // MODAL_SANDBOX_V2=0: SandboxList
    expect(viaV1).toContain(b.sandboxId);
    expect(viaV1).not.toContain(a.sandboxId);
    const viaV2 = await ids(v2.sandboxes.list({ appId: app.appId })); // the default: SandboxListV2
    expect(viaV2).toEqual(expect.arrayContaining([a.sandboxId, b.sandboxId]));
  });

  test("GPUs, and ephemeral_secrets with secret_sources, are INVALID_ARGUMENT on a raw SandboxCreateV2", async () => {
    // The SDK refuses both before sending ("GPUs are not supported by experimentalCreate"); the server too.
    const app = await v2.apps.fromName(APP, { createIfMissing: true });
    const image = await v2.images.fromRegistry("alpine:3.21").build(app);
    const base = { app_id: app.appId, definition: { image_id: image.imageId } };
    await expect(
      raw.unary("SandboxCreateV2", {
        ...base,
        definition: { ...base.definition, resources: { gpu_config: { gpu_type: "T4", count: 1 } } },
      }),
    ).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/GPUs/) });
    await expect(
      raw.unary("SandboxCreateV2", {
        ...base,
        ephemeral_secrets: { contents: { A: "1" } },
        secret_sources: [{ env: { contents: { B: "2" } } }],
      }),
    ).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/cannot be combined with ephemeral_secrets/),
    });
  });
});

describe("V1 sandboxes keep every feature strict mode refuses on V2", () => {
  test("a GPU create goes to V1: name, idle timeout, tags, getTags, list by tag, fromName", async () => {
    const unique = `gpu${Date.now()}`;
    const sb = await create(v2, {
      gpu: "t4", // the SDK upper-cases the type
      name: `gpu-${unique}`,
      idleTimeoutMs: 600_000,
      tags: { batch: unique, role: "gpu" },
    });
    expect(sb.sandboxId).toMatch(/^sb-[0-9A-Za-z]{22}$/); // the V1 id shape
    expect(await sb.getTags()).toEqual({ batch: unique, role: "gpu" });
    expect(await ids(v2.sandboxes.list({ tags: { batch: unique } }))).toEqual([sb.sandboxId]);
    expect((await v2.sandboxes.fromName(APP, `gpu-${unique}`)).sandboxId).toBe(sb.sandboxId);
    expect(emu.listSandboxes().find((s) => s.sandboxId === sb.sandboxId)).toMatchObject({
      v2: false,
      gpu: "T4",
      name: `gpu-${unique}`,
      tags: { batch: unique, role: "gpu" },
    });
  });

  test("list results carry no tags, whichever list RPC; the tag filter still works server side", async () => {
    const unique = `listed${Date.now()}`;
    const sb = await create(v1, { tags: { batch: unique } });
    for (const method of ["SandboxList", "SandboxListV2"] as const) {
      expect(await listedTags(method, { batch: unique })).toEqual([{ id: sb.sandboxId, tags: [] }]);
      expect(await listedTags(method, { batch: `${unique}-other` })).toEqual([]);
    }
    // getTags() is how a client reads them.
    expect(await (await v1.sandboxes.fromId(sb.sandboxId)).getTags()).toEqual({ batch: unique });
  });
});

describe("GPU types, counts and regions from Modal's documented lists", () => {
  test("an unknown type, a type with a trailing space and a count above the maximum are INVALID_ARGUMENT", async () => {
    // "A100 : 2" passes naive checks and reaches Modal as type "A100 " (the SDK splits on ":" and keeps spaces).
    for (const [gpu, pattern] of [
      ["A100 : 2", /unknown GPU type "A100 "/],
      ["Z100", /unknown GPU type "Z100"/],
      ["T4:9", /9 x T4 requested; at most 8/],
      ["A10:5", /5 x A10 requested; at most 4/],
    ] as const) {
      const err = await create(v2, { gpu }).catch((e: unknown) => e);
      expect(err, gpu).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect(String((err as Error).message), gpu).toMatch(pattern);
    }
    expect(emu.listSandboxes().filter((s) => s.gpu?.startsWith("Z") || s.gpu?.includes(" "))).toEqual([]);
    // An image layer's GPU (dockerfileCommands(..., { gpu })) is checked the same way.
    const app = await v2.apps.fromName(APP, { createIfMissing: true });
    const layer = v2.images
      .fromRegistry("alpine:3.21")
      .dockerfileCommands(["RUN nvidia-smi"], { gpu: "A100 :2" });
    await expect(layer.build(app)).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      message: expect.stringMatching(/ImageGetOrCreate: unknown GPU type "A100 "/),
    });
  });

  test("documented types and counts work: A10G:4, H100!, A100-80GB:8", async () => {
    for (const gpu of ["A10G:4", "H100!", "A100-80GB:8"]) {
      const sb = await create(v2, { gpu });
      expect(emu.listSandboxes().find((s) => s.sandboxId === sb.sandboxId)?.gpu).toBe(gpu);
      await sb.terminate();
    }
  });

  test("an unknown region is INVALID_ARGUMENT listing the known ones; a documented one is recorded", async () => {
    const err = await create(v2, { regions: ["us-east", "mars-north"] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(String((err as Error).message)).toMatch(/unknown region "mars-north"\. Known regions: us, eu/);
    const sb = await create(v2, { regions: ["us-east", "eu-west-1"] });
    expect(emu.listSandboxes().find((s) => s.sandboxId === sb.sandboxId)?.regions).toEqual([
      "us-east",
      "eu-west-1",
    ]);
  });
});

describe("name and tag limits", () => {
  test("names: 64 characters of [A-Za-z0-9-_.] work; 65, other characters and App-ID look-alikes do not", async () => {
    const app = await v1.apps.fromName(APP, { createIfMissing: true });
    const image = await v1.images.fromRegistry("alpine:3.21").build(app);
    const sb = await create(v1, { name: "n".repeat(64) });
    expect((await v1.sandboxes.fromName(APP, "n".repeat(64))).sandboxId).toBe(sb.sandboxId);
    // The SDK refuses longer names itself (InvalidError); the server refuses them too.
    await expect(create(v1, { name: "n".repeat(65) })).rejects.toBeInstanceOf(InvalidError);
    for (const name of ["n".repeat(65), "has space", `ap-${"a".repeat(22)}`]) {
      await expect(
        raw.unary("SandboxCreate", { app_id: app.appId, definition: { image_id: image.imageId, name } }),
        name,
      ).rejects.toMatchObject({
        code: status.INVALID_ARGUMENT,
        details: expect.stringMatching(/Invalid Sandbox name/),
      });
    }
    await expect(
      raw.unary("AppGetOrCreate", { app_name: "a".repeat(65), object_creation_type: 1 }),
    ).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/Invalid App name/),
    });
    expect(
      await raw.unary("AppGetOrCreate", { app_name: "a".repeat(64), object_creation_type: 1 }),
    ).toMatchObject({ app_id: expect.stringMatching(/^ap-/) });
  });

  test("tag values above the cap are INVALID_ARGUMENT at create and in setTags (InvalidError)", async () => {
    const long = "v".repeat(MAX_TAG_VALUE_LENGTH + 1);
    const err = await create(v1, { tags: { big: long } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(String((err as Error).message)).toMatch(/the value of tag 'big' is 257 characters; at most 256/);
    const sb = await create(v1, { tags: { fits: "v".repeat(MAX_TAG_VALUE_LENGTH) } });
    await expect(sb.setTags({ big: long })).rejects.toBeInstanceOf(InvalidError);
    await expect(sb.setTags({ ["k".repeat(65)]: "v" })).rejects.toThrow(
      /tag name 'k{20}\.\.\.' is 65 characters/,
    );
    expect(await sb.getTags()).toEqual({ fits: "v".repeat(MAX_TAG_VALUE_LENGTH) });
  });
});
