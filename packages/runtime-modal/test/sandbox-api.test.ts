import { type CostHooks, LEASE_TAG_KEY, silentLogger } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import {
  MODAL_REGIONS,
  type ModalRuntime,
  type ModalRuntimeProvider,
  modalRuntime,
  TAGS,
  toModalRuntimeError,
} from "../src/index.js";
import { emulatorOptions, errorOf, thrownBy, useEmulator } from "./helpers.js";

// sandboxApi, region names and tag caps, through the real modal@0.11.1 SDK against the strict emulator (which
// refuses an idle timeout or a name on V2, keeps no V2 tags, and checks regions and tag lengths as Modal would).

const h = useEmulator();
const { provider, connected } = h;

const summaryOf = (runtime: ModalRuntime) =>
  h.emulator.listSandboxes().find((s) => s.sandboxId === runtime.sandboxId);

/** What Modal's V1 list says of a sandbox: its idle timeout in seconds (and that list results carry no tags). */
async function listedInfo(p: ModalRuntimeProvider, sandboxId: string) {
  const app = await p.client.apps.fromName(p.options.appName);
  const resp = await p.client.cpClient.sandboxList({ appId: app.appId, includeFinished: false, tags: [] });
  const info = resp.sandboxes.find((s) => s.id === sandboxId);
  return { idleTimeoutSecs: info?.idleTimeoutSecs, tags: info?.tags };
}

const noCost: CostHooks = {
  reserve: async ({ lifetimeMs }) => ({ leaseId: "lease-1", reservedUsd: 0, lifetimeMs }),
  activate: async () => undefined,
  heartbeat: async () => undefined,
  settle: async (leaseId) => ({ leaseId, chargedUsd: 0, durationMs: 0 }),
};

describe("sandboxApi", () => {
  it('defaults to "v1" through the SDK\'s own switch: a named, tagged V1 sandbox with an idle timeout', async () => {
    const p = provider();
    expect(p.options.sandboxApi).toBe("v1");
    expect(p.options.idleTimeoutMs).toBe(900_000);
    expect(p.client.profile.sandboxV2).toBe(false);
    const runtime = await connected(p, "api-default");
    const sb = summaryOf(runtime);
    expect(sb?.v2).toBe(false);
    expect(runtime.sandboxId).toMatch(/^sb-[A-Za-z0-9]{22}$/);
    expect(sb?.name).toBe("ar-api-default");
    expect(sb?.tags[TAGS.session]).toBe("api-default");
    expect(runtime.handle().data.sandboxName).toBe("ar-api-default");
    expect(await listedInfo(p, runtime.sandboxId!)).toEqual({ idleTimeoutSecs: 900, tags: [] });
  });

  it("wins over MODAL_SANDBOX_V2 in the environment, which it leaves as it was", () => {
    process.env.MODAL_SANDBOX_V2 = "1";
    try {
      expect(provider().client.profile.sandboxV2).toBe(false);
      expect(process.env.MODAL_SANDBOX_V2).toBe("1");
    } finally {
      delete process.env.MODAL_SANDBOX_V2;
    }
    process.env.MODAL_SANDBOX_V2 = "0";
    try {
      expect(provider({ sandboxApi: "v2" }).client.profile.sandboxV2).toBe(true);
      expect(process.env.MODAL_SANDBOX_V2).toBe("0");
    } finally {
      delete process.env.MODAL_SANDBOX_V2;
    }
  });

  it('"v2" creates a V2 sandbox without a name, tags or idle timeout (which strict Modal refuses), and it works', async () => {
    const p = provider({ sandboxApi: "v2" });
    expect(p.options.idleTimeoutMs).toBeUndefined();
    expect(p.client.profile.sandboxV2).toBe(true);
    expect(p.supportedOverrides).not.toContain("idleTimeoutMs");
    const runtime = await connected(p, "api-v2");
    const sb = summaryOf(runtime);
    expect(sb?.v2).toBe(true);
    expect(runtime.sandboxId).toMatch(/-v2$/);
    expect(sb?.name).toBeFalsy();
    expect(sb?.tags).toEqual({});
    expect(runtime.handle().data.sandboxName).toBeUndefined();
    expect((await runtime.runCommand("echo on-v2")).content.trim()).toBe("on-v2");
    // Re-attach by handle needs neither names nor tags.
    const again = await p.attach(runtime.handle());
    h.track(again);
    await again.connect();
    expect((await again.runCommand("echo again")).content.trim()).toBe("again");
  });

  it('"v2" refuses up front every option that needs what V2 lacks, each naming the option and the fix', () => {
    const err = thrownBy(() =>
      modalRuntime(
        emulatorOptions(h.emulator, {
          sandboxApi: "v2",
          idleTimeoutMs: 60_000,
          tags: { team: "ml" },
          pool: { size: 1 },
          sessionKeySecret: "k".repeat(40),
        }),
      ),
    );
    expect(err.code).toBe("INVALID_ARGUMENT");
    const issues = err.details?.issues as string[];
    expect(issues).toEqual([
      'idleTimeoutMs: Modal\'s V2 sandbox API has no idle timeout; remove idleTimeoutMs or use sandboxApi "v1" (the default)',
      'tags: Modal\'s V2 sandbox API keeps no tags; remove tags or use sandboxApi "v1" (the default)',
      expect.stringMatching(
        /^pool\.size: a warm pool needs tags .* set pool\.size to 0 or use sandboxApi "v1"/,
      ),
      expect.stringMatching(/^sessionKeySecret: attachSession finds a sandbox by its name or tags/),
    ]);
    // A GPU always goes to V1 (the SDK's rule), so "v2" with a provider GPU is a contradiction.
    expect(
      thrownBy(() => modalRuntime(emulatorOptions(h.emulator, { sandboxApi: "v2", gpu: "T4" }))).message,
    ).toContain(
      'sandboxApi: a GPU sandbox always uses Modal\'s V1 sandbox API (modal@0.11.1 sends GPU creates to V1), so "v2" has no effect with gpu "T4"',
    );
    // A cost plugin's lease tag could not reach the sandbox, so its orphan sweep could not find it.
    const cost = thrownBy(() =>
      modalRuntime(emulatorOptions(h.emulator, { sandboxApi: "v2" }), { logger: silentLogger, cost: noCost }),
    );
    expect(cost.code).toBe("INVALID_ARGUMENT");
    expect(cost.message).toMatch(/^sandboxApi: a cost plugin puts its lease id in the sandbox's tags/);
    expect(cost.message).toContain('use sandboxApi "v1" (the default) with a cost plugin');
  });

  it('"v2" refuses per-session idle timeouts and labels (UNSUPPORTED), attachSession, and listing', async () => {
    const p = provider({ sandboxApi: "v2" });
    const idle = await errorOf(p.create({ sessionId: "v2-idle", idleTimeoutMs: 60_000 }));
    expect(idle.code).toBe("UNSUPPORTED");
    expect(idle.message).toContain(
      "idleTimeoutMs: the modal backend cannot set this per session; Modal's V2",
    );
    const labels = await errorOf(p.create({ sessionId: "v2-labels", labels: { team: "ml" } }));
    expect(labels.code).toBe("UNSUPPORTED");
    expect(labels.message).toContain("labels: the modal backend cannot set this per session; labels become");
    const attach = await errorOf(p.attachSession("anything"));
    expect(attach.code).toBe("UNSUPPORTED");
    expect(attach.message).toContain("re-attach with a stored handle (provider.attach)");
    // An empty answer would tell a sweeper that every lease lost its sandbox: refuse instead.
    const list = await errorOf(p.inventory.listByTag(LEASE_TAG_KEY));
    expect(list.code).toBe("UNSUPPORTED");
    expect(list.message).toContain('The modal runtime option sandboxApi is "v2"; use "v1" (the default)');
  });

  it('on a "v2" provider a session with a GPU goes to V1 and keeps its name, labels and an idle timeout', async () => {
    const p = provider({ sandboxApi: "v2" });
    const runtime = (await p.create({
      sessionId: "v2-gpu",
      gpu: "T4",
      labels: { team: "vision" },
    })) as ModalRuntime;
    h.track(runtime);
    await runtime.connect();
    const sb = summaryOf(runtime);
    expect(sb?.v2).toBe(false);
    expect(sb?.gpu).toBe("T4");
    expect(sb?.name).toBe("ar-v2-gpu");
    expect(sb?.tags.team).toBe("vision");
    expect((await listedInfo(p, runtime.sandboxId!)).idleTimeoutSecs).toBe(900);
  });
});

describe("regions and tags within Modal's limits", () => {
  it("a region Modal does not document is refused with the known ones; a documented one reaches Modal", async () => {
    const err = thrownBy(() => modalRuntime(emulatorOptions(h.emulator, { region: "us-moon-1" })));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toContain(
      `region: unknown Modal region "us-moon-1"; Modal's documented regions are us, eu,`,
    );
    expect(MODAL_REGIONS).toContain("us-east");
    const runtime = await connected(provider({ region: "us-east" }), "in-us-east");
    expect(summaryOf(runtime)?.regions).toEqual(["us-east"]);
  });

  it("tag keys over 64 and values over 256 characters are refused, naming the tag", async () => {
    const long = "x".repeat(257);
    const key = "k".repeat(65);
    const err = thrownBy(() =>
      modalRuntime(emulatorOptions(h.emulator, { tags: { team: long, [key]: "v" } })),
    );
    expect(err.details?.issues).toEqual([
      "tags.team: the tag value is 257 characters; Modal tag values hold at most 256",
      `tags.${key}: the tag key is 65 characters; Modal tag keys hold at most 64`,
    ]);
    // The largest that fit are accepted, and the strict emulator takes them too.
    const p = provider({ tags: { ["k".repeat(64)]: "v".repeat(256) } });
    const runtime = await connected(p, "long-tags");
    expect(summaryOf(runtime)?.tags["k".repeat(64)]).toBe("v".repeat(256));
    // runtime-core refuses over-long label values; runtime-modal says the same of its own session tag.
    const session = await errorOf(p.create({ sessionId: "s".repeat(257) }));
    expect(session.code).toBe("INVALID_ARGUMENT");
    expect(session.message).toContain(
      `sessionId: 257 characters; the session id is the value of the sandbox's tag "${TAGS.session}", and Modal tag values hold at most 256`,
    );
  });
});

describe("SDK parameter errors", () => {
  it("a plain Error the SDK throws for a bad create parameter is INVALID_ARGUMENT, not INTERNAL", async () => {
    const p = provider();
    const app = await p.client.apps.fromName(p.options.appName, { createIfMissing: true });
    const image = p.client.images.fromRegistry("node:20-bookworm-slim");
    let raw: unknown;
    try {
      await p.client.sandboxes.create(app, image, { workdir: "relative/dir" });
    } catch (err) {
      raw = err;
    }
    // modal@0.11.1 checks this before sending anything, with a plain Error.
    expect(Object.getPrototypeOf(raw)).toBe(Error.prototype);
    const err = toModalRuntimeError(raw, "create", "Creating the Modal sandbox failed");
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toBe(
      "Creating the Modal sandbox failed: workdir must be an absolute path, got: relative/dir (the Modal SDK refused a sandbox parameter before sending it)",
    );
    // Elsewhere a plain Error stays INTERNAL (an unexpected failure, not a bad parameter).
    expect(toModalRuntimeError(raw, "poll", "Checking failed").code).toBe("INTERNAL");
  });
});
