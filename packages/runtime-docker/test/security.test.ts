// Attack tests: every claim runtime-docker's README makes about what a sandbox cannot do, tried from inside one.
// The code in the sandbox is hostile; it runs as root in its container.

import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noopRedactor, type Runtime } from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DockerRuntime, dockerRuntime } from "../src/index.js";
import { cleanupSessions, engine, found, skipNote, testOptions } from "./helpers.js";

const PREFIX = `sec-${process.pid}-`;
let n = 0;
const session = () => `${PREFIX}${n++}`;

/** Runs a node script inside the sandbox and returns its trimmed output. */
async function nodeIn(runtime: Runtime, script: string, timeout = 30): Promise<string> {
  const obs = await runtime.runCommand(`node -e ${JSON.stringify(script).replace(/\$/g, "\\$")}`, {
    timeoutMs: timeout * 1000,
  });
  return obs.content.trim();
}

/** A script that tries a TCP connection and prints "open" or the error code. */
const tryConnect = (host: string, port: number) =>
  `const s=require("net").connect({host:${JSON.stringify(host)},port:${port},timeout:3000});` +
  `s.on("connect",()=>{console.log("open");process.exit(0)});s.on("timeout",()=>{console.log("timeout");process.exit(0)});` +
  `s.on("error",e=>{console.log(e.code);process.exit(0)})`;

function listen(server: Server, target: number | string): Promise<void> {
  return new Promise((resolve) => server.listen(target as number, "127.0.0.1", () => resolve()));
}

describe.skipIf(found.skip !== undefined)(`runtime-docker isolation (attack tests)${skipNote}`, () => {
  cleanupSessions(PREFIX);
  let egress: DockerRuntime;
  let hostService: Server;
  let hostPort = 0;
  let hits = 0;

  beforeAll(async () => {
    hostService = createServer((_req, res) => {
      hits++;
      res.end("host secret");
    });
    await listen(hostService, 0);
    hostPort = (hostService.address() as { port: number }).port;
    egress = await dockerRuntime(testOptions({ memoryMiB: 256, maxProcesses: 64 })).create({
      sessionId: session(),
    });
    await egress.connect();
  }, 120_000);

  afterAll(async () => {
    await egress?.close();
    hostService?.close();
  });

  it("cannot reach the container engine: no engine socket inside, none reachable", async () => {
    const obs = await egress.runCommand(
      "ls -la /var/run/docker.sock /run/docker.sock /run/podman/podman.sock /var/tmp/agent-runtime-engine 2>&1; echo exit=$?",
    );
    expect(obs.content).toMatch(/No such file or directory/);
    expect(obs.content).not.toMatch(/^s[rwx-]{9}/m);
    expect(obs.content).toContain("exit=2");
  });

  it("cannot reach services on the host's loopback, through 127.0.0.1 or the bridge's gateway", async () => {
    const gateway = await egress.runCommand("awk '$2==\"00000000\" {print $3}' /proc/net/route | head -1");
    const hex = gateway.content.trim();
    expect(hex).toMatch(/^[0-9A-F]{8}$/);
    const gw = [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join(".");
    expect(await nodeIn(egress, tryConnect("127.0.0.1", hostPort))).not.toBe("open");
    expect(await nodeIn(egress, tryConnect(gw, hostPort))).not.toBe("open");
    expect(hits).toBe(0);
  }, 60_000);

  it("has egress (the claim's positive side): Debian's mirror answers over HTTP", async () => {
    const out = await nodeIn(
      egress,
      'fetch("http://deb.debian.org/debian/").then(r=>console.log("status",r.status)).catch(e=>console.log("error",e.cause?.code??e.message))',
    );
    expect(out).toMatch(/^status (200|30\d)/);
  }, 60_000);

  it('network "none": only loopback, nothing outside reachable', async () => {
    const runtime = await dockerRuntime(testOptions({ network: "none" })).create({ sessionId: session() });
    await runtime.connect();
    try {
      const ifaces = await runtime.runCommand("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
      expect(ifaces.content.trim().split("\n")).toEqual(["lo"]);
      expect(await nodeIn(runtime, tryConnect("deb.debian.org", 80))).toMatch(
        /ENOTFOUND|EAI_AGAIN|ENETUNREACH/,
      );
      expect(await nodeIn(runtime, tryConnect("1.1.1.1", 80))).toMatch(/ENETUNREACH|EHOSTUNREACH|timeout/);
    } finally {
      await runtime.close();
    }
  }, 120_000);

  it("cannot drive another sandbox: the other's server listens on no network, its socket is not visible", async () => {
    const other = await dockerRuntime(testOptions()).create({ sessionId: session() });
    await other.connect();
    try {
      const info = await engine.inspectContainer(other.containerId as string);
      const ip = (info?.NetworkSettings as { Networks?: Record<string, { IPAddress?: string }> })?.Networks;
      const otherIp = Object.values(ip ?? {})[0]?.IPAddress;
      expect(otherIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      // The other container has no TCP listener at all (the server is on its unix socket only).
      const listeners = await other.runCommand(
        "awk 'NR>1 && $4==\"0A\"' /proc/net/tcp /proc/net/tcp6 | wc -l",
      );
      expect(listeners.content.trim()).toBe("0");
      expect(await nodeIn(egress, tryConnect(otherIp as string, 60000))).not.toBe("open");
      const sockets = await egress.runCommand("ls /run/agent-runtime");
      expect(sockets.content.trim()).toBe("server.sock");
      const otherProbe = await other.runCommand("echo still-mine");
      expect(otherProbe.content.trim()).toBe("still-mine");
    } finally {
      await other.close();
    }
  }, 120_000);

  it("cannot redirect the host: a symlink planted at its socket path is never followed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ar-probe-"));
    const probePath = join(dir, "probe.sock");
    let probeHits = 0;
    const probe = createServer((_req, res) => {
      probeHits++;
      res.end("{}");
    });
    await new Promise<void>((resolve) => probe.listen(probePath, resolve));
    const runtime = await dockerRuntime(testOptions()).create({ sessionId: session() });
    await runtime.connect();
    try {
      await runtime.runCommand(
        `rm -f /run/agent-runtime/server.sock && ln -s ${probePath} /run/agent-runtime/server.sock && ls -l /run/agent-runtime`,
      );
      const after = await runtime.runCommand("echo answered-by-the-real-server");
      expect(after.content.trim()).toBe("answered-by-the-real-server");
      expect(probeHits).toBe(0);
    } finally {
      await runtime.close();
      probe.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("cannot use more memory than memoryMiB: the hog is killed, the server lives on", async () => {
    const obs = await egress.runCommand(
      'node -e "const a=[];for(;;)a.push(Buffer.alloc(1<<20,1))"; echo "exit=$?"',
      { timeoutMs: 60_000 },
    );
    expect(obs.content).toMatch(/exit=(137|134|1)\b/);
    expect((await egress.runCommand("echo alive")).content.trim()).toBe("alive");
  }, 90_000);

  it("cannot start more than maxProcesses processes: a fork bomb is stopped, the server lives on", async () => {
    const out = await nodeIn(
      egress,
      'const cp=require("child_process");let failed=0;const kids=[];' +
        'for(let i=0;i<150;i++){try{const c=cp.spawn("sleep",["30"]);c.on("error",()=>failed++);kids.push(c)}catch{failed++}}' +
        'setTimeout(()=>{const n=require("fs").readdirSync("/proc").filter(x=>/^[0-9]+$/.test(x)).length;' +
        'console.log("procs",n,"failed",failed);for(const k of kids)k.kill("SIGKILL");process.exit(0)},1500)',
      60,
    );
    const m = /procs (\d+) failed (\d+)/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m?.[1])).toBeLessThanOrEqual(64);
    expect(Number(m?.[2])).toBeGreaterThan(50);
    expect((await egress.runCommand("echo alive")).content.trim()).toBe("alive");
  }, 90_000);

  it("cannot mount filesystems or gain privileges (no CAP_SYS_ADMIN, no_new_privs set)", async () => {
    const obs = await egress.runCommand("mkdir -p /mnt/x && mount -t tmpfs none /mnt/x 2>&1; echo exit=$?");
    expect(obs.content).not.toContain("exit=0");
    const nnp = await egress.runCommand("grep NoNewPrivs /proc/self/status");
    expect(nnp.content).toMatch(/NoNewPrivs:\s+1/);
  });

  it("cannot read its secrets back from the engine: neither they nor the session key are in the container's stored record", async () => {
    const secretValue = `docker-secret-${process.pid}-value`;
    const secrets = {
      resolve: async () => ({
        env: { DOCKER_TEST_SECRET: secretValue },
        names: ["DOCKER_TEST_SECRET"],
        redactor: noopRedactor,
      }),
    };
    const provider = dockerRuntime(testOptions(), { secrets });
    const runtime = await provider.create({ sessionId: session() });
    try {
      await runtime.connect();
      // The shell has the secret (what it is for), and not the server's key.
      const seen = await runtime.runCommand(
        'echo "$DOCKER_TEST_SECRET"; printenv SESSION_API_KEY || echo no key',
      );
      expect(seen.content.trim().split(/\r?\n/)).toEqual([secretValue, "no key"]);
      // Whoever may inspect the container (the engine's record, on its disk) sees neither.
      const stored = JSON.stringify(await engine.inspectContainer(runtime.containerId as string));
      expect(stored).toContain("NO_CHANGE_TIMEOUT_SECONDS");
      expect(stored).not.toContain(secretValue);
      expect(stored).not.toContain("DOCKER_TEST_SECRET");
      expect(stored).not.toContain("SESSION_API_KEY");
      // Nor does the container's first process, whose environment any process in it can read.
      const first = await runtime.runCommand("tr '\\0' '\\n' < /proc/1/environ");
      expect(first.content).not.toContain(secretValue);
      expect(first.content).not.toContain("SESSION_API_KEY");
    } finally {
      await runtime.close();
      await provider.close();
    }
  });
});
