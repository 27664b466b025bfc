import { InvalidArgumentError } from "@agent-runtime/runtime-core";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, test } from "vitest";
import { type ModalEmulator, startModalEmulator } from "../src/index.js";
import { strictFromEnv } from "../src/options.js";
import { clientFor, RawControlPlane } from "./helpers.js";

// Strict mode is the default (as the real service behaves); `strict: false` or MODAL_EMULATOR_STRICT=0 keeps the
// lenient emulator that implements every field on both sandbox APIs.

const started: ModalEmulator[] = [];
afterEach(async () => {
  delete process.env["MODAL_EMULATOR_STRICT"];
  for (const emu of started.splice(0)) await emu.close();
});

async function start(options: Parameters<typeof startModalEmulator>[0] = {}): Promise<ModalEmulator> {
  const emu = await startModalEmulator(options);
  started.push(emu);
  return emu;
}

describe("choosing the mode", () => {
  test("strict by default; MODAL_EMULATOR_STRICT=0 makes lenient the default; the option wins", async () => {
    expect((await start()).strict).toBe(true);
    process.env["MODAL_EMULATOR_STRICT"] = "0";
    expect((await start()).strict).toBe(false);
    expect((await start({ strict: true })).strict).toBe(true);
  });

  test("MODAL_EMULATOR_STRICT accepts 1/true/0/false and rejects anything else, naming it", () => {
    expect(strictFromEnv({})).toBe(true);
    expect(strictFromEnv({ MODAL_EMULATOR_STRICT: "TRUE" })).toBe(true);
    expect(strictFromEnv({ MODAL_EMULATOR_STRICT: "0" })).toBe(false);
    expect(() => strictFromEnv({ MODAL_EMULATOR_STRICT: "yes" })).toThrow(InvalidArgumentError);
    expect(() => strictFromEnv({ MODAL_EMULATOR_STRICT: "yes" })).toThrow(
      /MODAL_EMULATOR_STRICT must be 1, true, 0 or false, got "yes"/,
    );
  });

  test("a region list of one's own replaces the built-in one", async () => {
    const emu = await start({ strict: true, regions: ["moon-1"] });
    const client = clientFor(emu);
    const app = await client.apps.fromName("regions", { createIfMissing: true });
    const image = client.images.fromRegistry("alpine:3.21");
    await expect(client.sandboxes.create(app, image, { regions: ["us"] })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
    const sb = await client.sandboxes.create(app, image, { regions: ["moon-1"] });
    await sb.terminate();
    client.close();
  });
});

test("lenient (strict: false) behaves as before: V2 keeps names, idle timeouts and tags, lists show tags, any GPU string passes", async () => {
  const emu = await start({ strict: false });
  const v2 = clientFor(emu);
  const v1 = clientFor(emu, "v1");
  const raw = new RawControlPlane(emu);
  try {
    const app = await v2.apps.fromName("lenient", { createIfMissing: true });
    const image = v2.images.fromRegistry("alpine:3.21");
    const unique = `len${Date.now()}`;
    const sb = await v2.sandboxes.create(app, image, {
      name: `v2-${unique}`,
      idleTimeoutMs: 600_000,
      tags: { batch: unique },
      regions: ["anywhere"],
    });
    expect(sb.sandboxId).toMatch(/-v2$/);
    expect(await sb.getTags()).toEqual({ batch: unique });
    expect((await v2.sandboxes.fromName("lenient", `v2-${unique}`)).sandboxId).toBe(sb.sandboxId);
    // The V1 list sees V2 sandboxes, and list results carry tags.
    const viaV1: string[] = [];
    for await (const s of v1.sandboxes.list({ appId: app.appId })) viaV1.push(s.sandboxId);
    expect(viaV1).toContain(sb.sandboxId);
    const listed = await raw.unary<{ sandboxes: { id: string; tags: unknown[] }[] }>("SandboxList", {
      app_id: app.appId,
    });
    expect(listed.sandboxes.find((s) => s.id === sb.sandboxId)?.tags).toEqual([
      { tag_name: "batch", tag_value: unique },
    ]);
    const gpu = await v2.sandboxes.create(app, image, { gpu: "A100 : 2" });
    expect(emu.listSandboxes().find((s) => s.sandboxId === gpu.sandboxId)?.gpu).toBe("A100 :2");
    await sb.terminate();
    await gpu.terminate();
  } finally {
    raw.close();
    v1.close();
    v2.close();
  }
});
