import { type ModalClient, type Sandbox, SandboxTimeoutError } from "modal";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type ModalEmulator, type ModalEmulatorOptions, startModalEmulator } from "../src/index.js";
import { clientFor, seenInSandbox } from "./helpers.js";

/**
 * The whole sandbox flow through the real SDK. `v2` is the SDK default; `v1` sets MODAL_SANDBOX_V2=0 (V1 RPCs
 * everywhere: SandboxCreate + SandboxGetTaskId, SandboxGetLogs for stdout, SandboxGetTunnels...).
 */
export function sandboxFlowSuite(mode: "v1" | "v2", options: ModalEmulatorOptions = {}): void {
  let emu: ModalEmulator;
  let client: ModalClient;
  const created: Sandbox[] = [];

  beforeAll(async () => {
    emu = await startModalEmulator({
      secrets: { "flow-secret": { NAMED: "from-name" } },
      listPageSize: 2,
      ...options,
    });
    client = clientFor(emu, mode);
  });
  afterAll(async () => {
    for (const sb of created) await sb.terminate().catch(() => {});
    await emu.close();
    client?.close();
  });

  async function create(params: Parameters<ModalClient["sandboxes"]["create"]>[2] = {}): Promise<Sandbox> {
    const app = await client.apps.fromName("flow", { createIfMissing: true });
    const image = client.images.fromRegistry("alpine:3.21").dockerfileCommands(["RUN echo layer1"]);
    const sb = await client.sandboxes.create(app, image, params);
    created.push(sb);
    return sb;
  }

  const isV1Id = (id: string): boolean => /^sb-[0-9A-Za-z]{22}$/.test(id);

  test("create with env, secrets, resources; exec with env, workdir, stdout, stderr and exit code", async () => {
    const fromObject = await client.secrets.fromObject({ OBJ: "from-object" });
    const named = await client.secrets.fromName("flow-secret", { requiredKeys: ["NAMED"] });
    const sb = await create({
      env: { FOO: "bar" },
      secrets: [fromObject, named],
      cpu: 0.5,
      memoryMiB: 256,
      timeoutMs: 60_000,
      workdir: "/workspace",
      tags: { suite: mode },
    });
    expect(isV1Id(sb.sandboxId)).toBe(mode === "v1");
    const p = await sb.exec(["sh", "-c", 'echo "$FOO $OBJ $NAMED $EXTRA"; pwd; echo oops >&2; exit 3'], {
      env: { EXTRA: "exec-env" },
    });
    expect(await p.stdout.readText()).toBe(
      `bar from-object from-name exec-env\n${seenInSandbox(emu, sb.sandboxId, "/workspace")}\n`,
    );
    expect(await p.stderr.readText()).toBe("oops\n");
    expect(await p.wait()).toBe(3);

    const inTmp = await sb.exec(["pwd"], { workdir: "/tmp" });
    expect(await inTmp.stdout.readText()).toBe(`${seenInSandbox(emu, sb.sandboxId, "/tmp")}\n`);
    expect(await inTmp.wait()).toBe(0);

    const summary = emu.listSandboxes().find((s) => s.sandboxId === sb.sandboxId);
    expect(summary).toMatchObject({
      running: true,
      v2: mode === "v2",
      workdir: "/workspace",
      tags: { suite: mode },
    });
  });

  test("exec stdin, binary output, merged stderr-free pipes and a timeout (124)", async () => {
    const sb = await create();
    const cat = await sb.exec(["cat"]);
    await cat.stdin.writeText("line one\n");
    await cat.stdin.writeText("line two\n");
    await cat.stdin.close();
    expect(await cat.stdout.readText()).toBe("line one\nline two\n");
    expect(await cat.wait()).toBe(0);

    const bin = await sb.exec(["printf", "\\000\\001\\377"], { mode: "binary" });
    expect([...(await bin.stdout.readBytes())]).toEqual([0, 1, 255]);
    await bin.wait();

    const ignored = await sb.exec(["sh", "-c", "echo out; echo err >&2"], { stdout: "ignore" });
    expect(await ignored.stderr.readText()).toBe("err\n");
    expect(await ignored.wait()).toBe(0);

    const slow = await sb.exec(["sleep", "30"], { timeoutMs: 1000 });
    expect(await slow.wait()).toBe(124);
  });

  test("the main process's stdin and stdout", async () => {
    const sb = await create({ command: ["cat"] });
    expect(await sb.poll()).toBeNull();
    await sb.stdin.writeText("mirrored by cat");
    await sb.stdin.close();
    expect(await sb.stdout.readText()).toBe("mirrored by cat");
    expect(await sb.wait()).toBe(0);
    expect(await sb.poll()).toBe(0);
  });

  test("wait and poll report the exit code; terminate gives 137", async () => {
    // V1 create waits for the task id; a process that ends before that makes the SDK raise ConflictError
    // ("already finished"), as Modal does. Live for a second so the test measures exit codes, not that race.
    const failing = await create({ command: ["sh", "-c", "sleep 1; echo bye >&2; exit 42"] });
    expect(await failing.wait()).toBe(42);
    expect(await failing.poll()).toBe(42);
    expect(await failing.stderr.readText()).toBe("bye\n");

    const sleeper = await create();
    expect(await sleeper.poll()).toBeNull();
    expect(await sleeper.terminate({ wait: true })).toBe(137);
    // A second terminate is harmless and keeps the first result.
    await sleeper.terminate();
    expect(await sleeper.wait()).toBe(137);
  });

  test("fromId, tags, list (by tags and app, paged) and fromName", async () => {
    const unique = `u${Date.now()}`;
    const a = await create({ tags: { batch: unique, role: "a" }, name: `named-${mode}-${unique}` });
    const b = await create({ tags: { batch: unique, role: "b" } });
    const c = await create({ tags: { batch: unique, role: "c" } });

    const again = await client.sandboxes.fromId(a.sandboxId);
    const p = await again.exec(["echo", "via fromId"]);
    expect(await p.stdout.readText()).toBe("via fromId\n");

    expect(await b.getTags()).toEqual({ batch: unique, role: "b" });
    await b.setTags({ batch: unique, role: "renamed" });
    expect(await b.getTags()).toEqual({ batch: unique, role: "renamed" });

    const byBatch: string[] = [];
    for await (const sb of client.sandboxes.list({ tags: { batch: unique } })) byBatch.push(sb.sandboxId);
    // Newest first, across pages of 2.
    expect(byBatch).toEqual([c.sandboxId, b.sandboxId, a.sandboxId]);

    const byRole: string[] = [];
    for await (const sb of client.sandboxes.list({ tags: { batch: unique, role: "renamed" } })) {
      byRole.push(sb.sandboxId);
    }
    expect(byRole).toEqual([b.sandboxId]);

    const app = await client.apps.fromName("flow");
    const inApp: string[] = [];
    for await (const sb of client.sandboxes.list({ appId: app.appId })) inApp.push(sb.sandboxId);
    expect(inApp).toEqual(expect.arrayContaining([a.sandboxId, b.sandboxId, c.sandboxId]));

    const byName = await client.sandboxes.fromName("flow", `named-${mode}-${unique}`);
    expect(byName.sandboxId).toBe(a.sandboxId);

    await c.terminate({ wait: true });
    const running: string[] = [];
    for await (const sb of client.sandboxes.list({ tags: { batch: unique } })) running.push(sb.sandboxId);
    expect(running).toEqual([b.sandboxId, a.sandboxId]);
  });

  test("a sandbox timeout gives 124, and tunnels() of the timed-out sandbox raises SandboxTimeoutError", async () => {
    const sb = await create({ timeoutMs: 1000 });
    expect(await sb.wait()).toBe(124);
    const handle = await client.sandboxes.fromId(sb.sandboxId);
    await expect(handle.tunnels()).rejects.toBeInstanceOf(SandboxTimeoutError);
    expect(emu.listSandboxes().find((s) => s.sandboxId === sb.sandboxId)?.result?.status).toBe("TIMEOUT");
  });

  test("an idle timeout ends an idle sandbox (status 7); a running exec keeps it alive", async () => {
    const idle = await create({ idleTimeoutMs: 1000 });
    const busy = await create({ idleTimeoutMs: 1000 });
    const work = await busy.exec(["sleep", "2"]);
    expect(await idle.wait()).toBe(0);
    expect(emu.listSandboxes().find((s) => s.sandboxId === idle.sandboxId)?.result?.status).toBe(
      "IDLE_TIMEOUT",
    );
    expect(await work.wait()).toBe(0);
    expect(await busy.poll()).toBeNull();
    expect(await busy.wait()).toBe(0);
  });
}
