import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { INTERRUPTED_QUEUED, INTERRUPTED_RUNNING } from "../src/host.js";
import { readySession, runCommand, startTestServer, type TestServer, tempDir } from "./helpers.js";

const dir = tempDir();
const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  dir.cleanup();
});

test("a restart loses nothing: results remain, live sessions re-attach, interrupted tasks say so", async () => {
  const db = join(dir.path, "host.db");
  const first = await startTestServer({ storage: { path: db } });
  servers.push(first);
  const id = await readySession(first, { id: "survivor" });
  const done = await runCommand(first, id, "echo before-restart > marker.txt && echo written");
  expect(done.status).toBe("completed");

  // One action running and one queued behind it when the host stops.
  const running = await first.request("POST", `/v1/sessions/${id}/actions`, {
    body: { action: "run", args: { command: "sleep 2", blocking: true } },
  });
  const queued = await first.request("POST", `/v1/sessions/${id}/actions`, {
    body: { action: "run", args: { command: "echo never" } },
  });
  for (
    let i = 0;
    i < 100 && (await first.request("GET", `/v1/tasks/${running.body.id}`)).body.status !== "running";
    i++
  ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  // A session still starting when the host stops.
  const starting = await first.request("POST", "/v1/sessions", { body: { id: "was-starting" } });
  expect(starting.body.status).toBe("starting");
  await first.stop({ keepSessions: true });
  servers.pop();

  const second = await startTestServer({ storage: { path: db } });
  servers.push(second);
  await second.host.recovered;

  const kept = await second.request("GET", `/v1/tasks/${done.id}`);
  expect(kept.body).toMatchObject({ status: "completed", observation: { observation: "run" } });
  expect(kept.body.observation.content).toContain("written");

  const r = await second.request("GET", `/v1/tasks/${running.body.id}`);
  expect(r.body).toMatchObject({
    status: "failed",
    error: { code: "UNAVAILABLE", message: INTERRUPTED_RUNNING },
  });
  expect(r.body.error.message).toMatch(/^Interrupted by host restart/);
  const q = await second.request("GET", `/v1/tasks/${queued.body.id}`);
  expect(q.body).toMatchObject({ status: "failed", error: { message: INTERRUPTED_QUEUED } });

  const s = await second.request("GET", `/v1/sessions/${id}?waitMs=20000`);
  expect(s.body).toMatchObject({ id, status: "ready", error: null });
  // The same sandbox: the file written before the restart is there (read does not wait for the shell).
  const read = await second.request("POST", `/v1/sessions/${id}/actions`, {
    body: { action: "read", args: { path: "marker.txt" } },
  });
  const readDone = await second.request("GET", `/v1/tasks/${read.body.id}?waitMs=20000`);
  expect(readDone.body.observation.content).toContain("before-restart");

  const w = await second.request("GET", "/v1/sessions/was-starting");
  expect(w.body).toMatchObject({ status: "error", error: { code: "UNAVAILABLE" } });
  expect(w.body.error.message).toContain("Interrupted by host restart while the sandbox was starting");

  const del = await second.request("DELETE", `/v1/sessions/${id}`);
  expect(del.body.status).toBe("closed");
});

test("a sandbox that died while the host was down is reported, not hidden", async () => {
  const db = join(dir.path, "host2.db");
  const first = await startTestServer({ storage: { path: db } });
  servers.push(first);
  const id = await readySession(first);
  expect((await runCommand(first, id, "true")).status).toBe("completed");
  await first.stop({ keepSessions: true });
  servers.pop();
  // Kill the sandbox's whole process group behind the host's back.
  const { HostStore } = await import("../src/store.js");
  const store = new HostStore(db);
  const data = store.handleOf(id)?.data as { pid: number };
  store.close();
  expect(typeof data.pid).toBe("number");
  process.kill(-data.pid, "SIGKILL");
  await new Promise((r) => setTimeout(r, 200));

  const second = await startTestServer({ storage: { path: db } });
  servers.push(second);
  const s = await second.request("GET", `/v1/sessions/${id}?waitMs=20000`);
  expect(s.body.status).toBe("error");
  expect(s.body.error.message).toContain("did not survive the host restart");
});

test("a sandbox lost while the host was down has its cost lease settled: at restart, and DELETE leaves it settled", async () => {
  const stateDir = join(dir.path, "lease-state");
  const first = await startTestServer({ storage: { stateDir }, cost: { enabled: true } });
  servers.push(first);
  const id = await readySession(first);
  const handle = first.host.store.handleOf(id)!;
  const leaseId = handle.data.leaseId as string;
  const pid = handle.data.pid as number;
  expect(typeof leaseId).toBe("string");
  expect(first.host.store.leaseOf(id)).toBe(leaseId);
  expect(first.host.plugins.cost?.getLease?.(leaseId)?.status).toBe("active");
  // The host stops without closing its sessions (as after kill -9), then the sandbox dies.
  await first.stop({ keepSessions: true });
  servers.pop();
  process.kill(-pid, "SIGKILL");
  await new Promise((r) => setTimeout(r, 200));

  const second = await startTestServer({ storage: { stateDir }, cost: { enabled: true } });
  servers.push(second);
  await second.host.recovered;
  const s = await second.request("GET", `/v1/sessions/${id}?waitMs=20000`);
  expect(s.body.status).toBe("error");
  const cost = second.host.plugins.cost!;
  expect(cost.getLease?.(leaseId)).toMatchObject({ status: "settled" });
  const del = await second.request("DELETE", `/v1/sessions/${id}`);
  expect(del.body.status).toBe("closed");
  const lease = cost.getLease?.(leaseId) as { status: string; settleReason?: string } | undefined;
  expect(lease?.status).toBe("settled");
  expect(lease?.settleReason).toContain("sandbox lost");
  const open = (cost as unknown as { openLeases(): { leaseId: string }[] }).openLeases();
  expect(open.map((l) => l.leaseId)).not.toContain(leaseId);
});
