import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  isRuntimeError,
  type RuntimeError,
  type RuntimeHandle,
  RuntimeStatus,
  type StatusEvent,
} from "@agent-runtime/runtime-core";
import { conformanceContext } from "@agent-runtime/runtime-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { type LocalRuntime, localRuntime } from "../src/index.js";
import { bubblewrapUsable, processAlive } from "../src/sandbox-process.js";

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
});

async function started(
  options: Parameters<typeof localRuntime>[0] = {},
  sessionId = "t",
): Promise<LocalRuntime> {
  const provider = localRuntime({ isolation: "none", ...options });
  opened.push(provider);
  const runtime = await provider.create({ sessionId });
  opened.push(runtime);
  await runtime.connect();
  return runtime;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isRuntimeError(err)) return (err as RuntimeError).code;
    throw err;
  }
  return "resolved";
}

describe("runtime-local", () => {
  it("reports a dead server as DISCONNECTED within 2 s, never a hang", async () => {
    const runtime = await started();
    const events: StatusEvent[] = [];
    runtime.onStatus((e) => events.push(e));
    const pending = runtime.runCommand("sleep 30", { timeoutMs: 60_000, blocking: true });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    process.kill(-runtime.pid!, "SIGKILL");
    expect(await codeOf(pending)).toBe("DISCONNECTED");
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(events.some((e) => e.status === RuntimeStatus.ERROR_RUNTIME_DISCONNECTED)).toBe(true);
    const t1 = Date.now();
    expect(await codeOf(runtime.runCommand("echo again"))).toBe("DISCONNECTED");
    expect(Date.now() - t1).toBeLessThan(2000);
  });

  it.each(bubblewrapUsable() ? (["none", "bubblewrap"] as const) : (["none"] as const))(
    "close stops every process of the sandbox and removes the temporary workspace (isolation %s)",
    async (isolation) => {
      const runtime = await started({ isolation });
      const ws = runtime.hostWorkspaceDir!;
      const marker = `${300 + Math.floor(Math.random() * 1000)}.${process.pid}`;
      await runtime.runCommand(`sleep ${marker} &`);
      await runtime.runCommand(`(sleep ${marker}; echo never) > /dev/null 2>&1 &`);
      const running = () =>
        spawnSync("pgrep", ["-f", `sleep ${marker}`], { encoding: "utf8" })
          .stdout.trim()
          .split("\n")
          .filter(Boolean);
      // Background jobs fork and exec asynchronously: wait until both sleeps exist.
      const jobsDeadline = Date.now() + 5000;
      while (running().length < 2 && Date.now() < jobsDeadline) await new Promise((r) => setTimeout(r, 20));
      expect(running().length).toBeGreaterThanOrEqual(2);
      expect(existsSync(ws)).toBe(true);
      const pid = runtime.pid!;
      await runtime.close();
      expect(processAlive(pid)).toBe(false);
      const deadline = Date.now() + 2000;
      while (running().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(running()).toEqual([]);
      expect(existsSync(ws)).toBe(false);
    },
  );

  it("keeps a given workspace (and a temporary one with keepWorkspace)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ar-given-"));
    const a = await started({ workspaceDir: dir });
    await a.writeFile(join(dir, "kept.txt"), "x");
    await a.close();
    expect(readdirSync(dir)).toEqual(["kept.txt"]);
    rmSync(dir, { recursive: true });
    const b = await started({ keepWorkspace: true });
    const ws = b.hostWorkspaceDir!;
    await b.close();
    expect(existsSync(ws)).toBe(true);
    rmSync(ws, { recursive: true });
  });

  it("injects env vars and secrets; secret values are redacted from observations", async () => {
    const kit = conformanceContext();
    const provider = localRuntime({ isolation: "none", env: { PLAIN_VAR: "plain" } }, kit.context);
    opened.push(provider);
    const runtime = await provider.create({ sessionId: "secrets" });
    opened.push(runtime);
    await runtime.connect();
    const obs = await runtime.runCommand('echo "$PLAIN_VAR $CONFORMANCE_TOKEN"');
    expect(obs.content).toBe("plain [redacted]");
  });

  it.each(bubblewrapUsable() ? (["none", "bubblewrap"] as const) : (["none"] as const))(
    "re-attaches after the host process exits, and gives NOT_FOUND once the sandbox is gone (isolation %s)",
    async (isolation) => {
      const out = spawnSync(
        process.execPath,
        ["--import", "tsx", join(import.meta.dirname, "fixtures", "keep-alive-host.ts"), isolation],
        {
          encoding: "utf8",
          timeout: 30_000,
          env: { ...process.env, SHLVL: "1" },
        },
      );
      expect(out.status, out.stderr).toBe(0);
      const handle = JSON.parse(out.stdout.trim().split("\n").pop()!) as RuntimeHandle;
      const provider = localRuntime({ isolation });
      opened.push(provider);
      const runtime = await provider.attach(handle);
      await runtime.connect();
      const obs = await runtime.runCommand("echo $FROM_FIRST_HOST $(pwd)");
      expect(obs.content.trim()).toBe("yes /tmp");
      await runtime.close();
      expect(processAlive(Number(handle.data.pid))).toBe(false);
      const again = await provider.attach(handle);
      expect(await codeOf(again.connect())).toBe("NOT_FOUND");
    },
  );

  it("attaching to a sandbox that died gives NOT_FOUND and frees what it left on disk", async () => {
    const provider = localRuntime({ isolation: "none", keepAlive: true });
    opened.push(provider);
    const runtime = await provider.create({ sessionId: "died" });
    await runtime.connect();
    const handle = runtime.handle();
    await runtime.close();
    const stateDir = String(handle.data.stateDir);
    const workspace = String(handle.data.hostWorkspace);
    expect(existsSync(stateDir) && existsSync(workspace)).toBe(true);
    process.kill(-Number(handle.data.pid), "SIGKILL");
    while (processAlive(Number(handle.data.pid))) await new Promise((r) => setTimeout(r, 10));
    const cgroups = (handle.data.cgroupDirs as string[] | undefined) ?? [];
    expect(await codeOf((await provider.attach(handle)).connect())).toBe("NOT_FOUND");
    expect(existsSync(stateDir)).toBe(false);
    for (const dir of cgroups) expect(existsSync(dir), dir).toBe(false);
    expect(existsSync(workspace)).toBe(false);
    // A forged handle never makes it remove directories it did not create.
    const keep = mkdtempSync(join(tmpdir(), "ar-given-"));
    const forged = {
      ...handle,
      data: { ...handle.data, stateDir: keep, hostWorkspace: keep, ownsWorkspace: true },
    };
    expect(await codeOf((await provider.attach(forged)).connect())).toBe("NOT_FOUND");
    expect(existsSync(keep)).toBe(true);
    rmSync(keep, { recursive: true });
  });

  it("a warm pool hands out a connected sandbox at once, refills, and drains on close", async () => {
    const provider = localRuntime({ isolation: "none", pool: { size: 2 } });
    opened.push(provider);
    const deadline = Date.now() + 15_000;
    while (provider.poolReady < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(provider.poolReady).toBe(2);
    const t0 = performance.now();
    const runtime = await provider.create({ sessionId: "pooled" });
    const acquireMs = performance.now() - t0;
    opened.push(runtime);
    expect(runtime.status).toBe(RuntimeStatus.READY);
    expect(runtime.sessionId).toBe("pooled");
    expect(acquireMs).toBeLessThan(1000);
    expect((await runtime.runCommand("echo pooled")).content.trim()).toBe("pooled");
    while (provider.poolReady < 2 && Date.now() < deadline + 15_000)
      await new Promise((r) => setTimeout(r, 20));
    expect(provider.poolReady).toBe(2);
    const pooledPid = (await provider.create({ sessionId: "second" })) as LocalRuntime;
    opened.push(pooledPid);
    await provider.close();
    expect(provider.poolReady).toBe(0);
    expect(await codeOf(provider.create({ sessionId: "late" }))).toBe("FAILED_PRECONDITION");
  });

  it("rejects bad options with every path, and names renamed options", () => {
    try {
      localRuntime({ isolation: "docker" as never, startupTimeoutMs: -1, env: { "bad name": "x" } });
      expect.unreachable();
    } catch (err) {
      expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
      const msg = (err as Error).message;
      expect(msg).toContain("isolation:");
      expect(msg).toContain("startupTimeoutMs:");
      expect(msg).toContain("env.bad name:");
    }
    expect(() => localRuntime({ workdir: "/tmp" } as never)).toThrow(
      /workdir: this option is now "workspaceDir"/,
    );
    expect(() => localRuntime({ workspaceDir: "/nonexistent/ar-dir" })).toThrow(
      /workspaceDir: .* does not exist/,
    );
  });

  it.each(bubblewrapUsable() ? (["none", "bubblewrap"] as const) : (["none"] as const))(
    "memory and file-size limits bound the commands, never the server (isolation %s)",
    async (isolation) => {
      const runtime = await started({ isolation, limits: { maxFileMiB: 1, memoryMiB: 256, cpuSeconds: 30 } });
      const big = await runtime.runCommand("head -c 3000000 /dev/zero > big.bin; echo status=$?");
      expect(big.content).toMatch(/File size limit exceeded|status=1\d\d|status=1/);
      const mem = await runtime.runCommand(
        `python3 -c "x = bytearray(600*1024*1024); print('allocated')" 2>&1 | tail -1; echo done`,
      );
      // A memory cgroup (root hosts) kills the command; an rlimit (elsewhere) makes the allocation fail.
      expect(mem.content).toMatch(/MemoryError|Cannot allocate|Killed|done/);
      expect(mem.content).not.toContain("allocated");
      // The server lives on and answers.
      expect((await runtime.runCommand("echo alive")).content.trim()).toBe("alive");
      const small = await runtime.runCommand(`python3 -c "x = bytearray(32*1024*1024); print('ok')"`);
      expect(small.content.trim()).toBe("ok");
    },
  );
});

describe.skipIf(!bubblewrapUsable())("runtime-local with bubblewrap", () => {
  it("host is read-only, /workspace is writable, /tmp is private", async () => {
    const runtime = await started({ isolation: "bubblewrap" });
    expect(runtime.isolation).toBe("bubblewrap");
    const ro = await runtime.runCommand("touch /usr/ar-should-fail 2>&1; echo rc=$?");
    expect(ro.content).toMatch(/Read-only file system/);
    await runtime.runCommand("echo in-sandbox > /workspace/w.txt && echo private > /tmp/ar-private-marker");
    expect(existsSync(join(runtime.hostWorkspaceDir!, "w.txt"))).toBe(true);
    expect(existsSync("/tmp/ar-private-marker")).toBe(false);
    expect((await runtime.runCommand("pwd")).content.trim()).toBe("/workspace");
  });
});

describe("bubblewrap command line", () => {
  it("shows only system directories, the workspace, a private HOME and /run, and binds node and the bundle back", async () => {
    const { buildArgv } = await import("../src/sandbox-process.js");
    const { LocalRuntimeOptionsSchema } = await import("../src/options.js");
    const argv = buildArgv({
      options: LocalRuntimeOptionsSchema.parse({
        nodePath: "/tmp/node-install/bin/node",
        extraBinds: ["/opt/tools", { source: "/srv/data", target: "/data" }],
      }),
      isolation: "bubblewrap",
      serverBin: "/tmp/checkout/packages/action-server/dist/bin.cjs",
      stateDir: "/var/tmp/state",
      homeDir: "/var/tmp/state/home",
      runDir: "/var/tmp/state/run",
      seccompFile: "/var/tmp/state/seccomp.bpf",
      hostWorkspace: "/var/tmp/ws",
      sandboxWorkspace: "/workspace",
      env: {},
    });
    const joined = argv.join(" ");
    const tmpfs = joined.indexOf("--tmpfs /tmp");
    expect(tmpfs).toBeGreaterThan(0);
    expect(joined.indexOf("--ro-bind /tmp/node-install/bin/node /tmp/node-install/bin/node")).toBeGreaterThan(
      tmpfs,
    );
    expect(
      joined.indexOf(
        "--ro-bind /tmp/checkout/packages/action-server/dist /tmp/checkout/packages/action-server/dist",
      ),
    ).toBeGreaterThan(tmpfs);
    expect(joined).toContain("--ro-bind /opt/tools /opt/tools");
    expect(joined).toContain("--ro-bind /srv/data /data");
    expect(joined).toContain("--bind /var/tmp/state/home /root");
    expect(joined).toContain("--bind /var/tmp/ws /workspace");
    for (const flag of ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--new-session", "--seccomp 4"]) {
      expect(joined).toContain(flag);
    }
    if (process.getuid?.() === 0) expect(joined).toContain("--cap-drop ALL");
    // Nothing of the host beyond the system directories: no /root, /home, /var, /srv, /opt binds of its own.
    for (const hostDir of ["/root", "/home", "/var", "/srv", "/opt", "/work", "/mnt", "/media", "/sys"]) {
      expect(argv.some((a, i) => a === "--ro-bind" && argv[i + 1] === hostDir)).toBe(false);
    }
    expect(argv.slice(-9)).toEqual([
      "/tmp/node-install/bin/node",
      "/tmp/checkout/packages/action-server/dist/bin.cjs",
      "0",
      "--working-dir",
      "/workspace",
      "--host",
      "127.0.0.1",
      "--socket",
      "/run/agent-runtime/server.sock",
    ]);
  });
});
