import { LEASE_TAG_KEY, RuntimeStatus } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import { type ModalRuntime, type ModalRuntimeProvider, TAGS } from "../src/index.js";
import { eventually, useEmulator } from "./helpers.js";

// Modal's proto marks SandboxInfo.tags "not yet exposed in client library": the strict emulator leaves them empty
// in every list result. Sweeps, pool cleanup and attach by session id must still find their sandboxes.

const h = useEmulator();
const { provider, connected, guarded } = h;

/** Every running sandbox of the provider's App as Modal's V1 list returns it (ids and tags). */
async function rawList(p: ModalRuntimeProvider): Promise<{ id: string; tags: unknown[] }[]> {
  const app = await p.client.apps.fromName(p.options.appName);
  const resp = await p.client.cpClient.sandboxList({ appId: app.appId, includeFinished: false, tags: [] });
  return resp.sandboxes.map((s) => ({ id: s.id, tags: s.tags }));
}

const runningIn = (appName: string) =>
  h.emulator.listSandboxes().filter((s) => s.appName === appName && s.running);

describe("list results without tags (strict h.emulator)", () => {
  it("cost-guard's sweep still terminates an orphan and settles the lease of a sandbox that is gone", async () => {
    const { guard, cost } = guarded();
    const p = provider({ keepAlive: true }, { cost });
    const orphan = await connected(p, "sweep-orphan");
    const healthy = await connected(p, "sweep-healthy");
    const gone = await connected(p, "sweep-gone");
    const [orphanLease, healthyLease, goneLease] = [orphan, healthy, gone].map((r) => r.lease!.leaseId);

    // As Modal may answer: the list carries every sandbox, but none of their tags.
    const listed = await rawList(p);
    expect(listed.map((s) => s.id).sort()).toEqual(
      [orphan.sandboxId, healthy.sandboxId, gone.sandboxId].sort(),
    );
    for (const s of listed) expect(s.tags).toEqual([]);

    // The orphan: its lease was settled elsewhere while the sandbox runs on.
    await guard.settle(orphanLease!, { reason: "host lost track" });
    // The gone one: its host let go (keepAlive close), then Modal ended the sandbox behind everyone's back.
    const goneId = gone.sandboxId!;
    await gone.close();
    expect(h.emulator.faults.evict(goneId)).toBe(true);
    await eventually(() => !runningIn(p.options.appName).some((s) => s.sandboxId === goneId));
    expect(guard.getLease(goneLease!)?.status).toBe("active");

    const report = await guard.sweepOrphans(p.inventory);
    expect(report.listed).toBe(2);
    expect(report.terminated).toEqual([
      {
        sandboxId: orphan.sandboxId,
        leaseId: orphanLease,
        reason: "its lease was settled (host lost track)",
      },
    ]);
    expect(report.settled.map((s) => s.leaseId)).toEqual([goneLease]);
    expect(guard.getLease(goneLease!)?.settleReason).toBe("orphan sweep: no sandbox carries this lease");
    expect(report.errors).toEqual([]);
    expect(runningIn(p.options.appName).map((s) => s.sandboxId)).toEqual([healthy.sandboxId]);
    expect(guard.getLease(healthyLease!)?.status).toBe("active");
    expect((await healthy.runCommand("echo still-here")).content.trim()).toBe("still-here");
  }, 60_000);

  it("listByTag reads each sandbox's tags, and lists only sandboxes runtime-modal made", async () => {
    const { cost } = guarded();
    const p = provider({}, { cost });
    const runtime = await connected(p, "list-mine");
    // A sandbox of the same App made by other code, with a lease tag of its own but no managed-by tag.
    const app = await p.client.apps.fromName(p.options.appName);
    const image = p.client.images.fromRegistry("node:20-bookworm-slim");
    const foreign = await p.client.sandboxes.create(app, image, {
      command: ["sleep", "60"],
      tags: { [LEASE_TAG_KEY]: "someone-else" },
    });
    h.track({ close: () => foreign.terminate() });
    const listed = await p.inventory.listByTag(LEASE_TAG_KEY);
    expect(listed.map((s) => s.sandboxId)).toEqual([runtime.sandboxId]);
    expect(listed[0]?.tags[LEASE_TAG_KEY]).toBe(runtime.lease?.leaseId);
    expect(listed[0]?.tags[TAGS.session]).toBe("list-mine");
  });

  it("closing a provider terminates its pooled sandboxes, found by the server-side tag filter", async () => {
    const p = provider({ pool: { size: 2 } });
    await eventually(() => p.poolReady === 2, 30_000);
    const handedOut = await p.create({ sessionId: "pool-kept" });
    h.track(handedOut);
    expect(handedOut.status).toBe(RuntimeStatus.READY);
    await (handedOut as ModalRuntime).pendingRetag;
    for (const s of await rawList(p)) expect(s.tags).toEqual([]);
    await p.close();
    // The pool refills in the background: whatever it started is gone; the sandbox handed out runs on.
    await eventually(() => runningIn(p.options.appName).length === 1, 15_000);
    expect(runningIn(p.options.appName)[0]?.sandboxId).toBe((handedOut as ModalRuntime).sandboxId);
  }, 60_000);

  it("attachSession finds a pooled sandbox handed out to the session by its session tag", async () => {
    const keySecret = "p".repeat(40);
    const p = provider({ pool: { size: 1 }, sessionKeySecret: keySecret, keepAlive: true });
    await eventually(() => p.poolReady === 1, 30_000);
    const first = (await p.create({ sessionId: "pooled-session" })) as ModalRuntime;
    h.track(first);
    await first.pendingRetag;
    await first.runCommand("export MARK=pooled");
    // The sandbox keeps its pool name, so only the session tag (read per sandbox) finds it.
    expect(h.emulator.listSandboxes().find((s) => s.sandboxId === first.sandboxId)?.name).not.toBe(
      "ar-pooled-session",
    );
    const other = provider({ appName: p.options.appName, sessionKeySecret: keySecret });
    const again = await other.attachSession("pooled-session");
    h.track(again);
    await again.connect();
    expect(again.sandboxId).toBe(first.sandboxId);
    expect((await again.runCommand("echo $MARK")).content.trim()).toBe("pooled");
  }, 60_000);
});
