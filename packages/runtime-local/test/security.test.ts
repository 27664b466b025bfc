// Attack tests: code inside a bubblewrap sandbox is hostile. Each test tries what an attacker would and
// asserts that it is held. CI runs them as root with bubblewrap and slirp4netns installed; there they never
// skip (a missing bwrap fails the run). Elsewhere they skip, reported as skipped, without bwrap, and so does
// CI's second pass, which hides bwrap on purpose (AGENT_RUNTIME_TEST_NO_BWRAP=1, see .ci/without-bwrap).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pidsCgroupBase } from "../src/cgroups.js";
import { type LocalRuntime, type LocalRuntimeOptions, localRuntime } from "../src/index.js";
import { bubblewrapUsable, processAlive, sessionMembers } from "../src/sandbox-process.js";

const inCI = Boolean(process.env.CI) && process.env.AGENT_RUNTIME_TEST_NO_BWRAP !== "1";
const bwrap = bubblewrapUsable();
const isRoot = process.getuid?.() === 0;
if (inCI && !bwrap) {
  throw new Error(
    "CI must run the sandbox attack tests: install bubblewrap (apt-get install -y bubblewrap).",
  );
}

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
});

async function sandbox(options: LocalRuntimeOptions = {}, sessionId = "attack"): Promise<LocalRuntime> {
  const provider = localRuntime({ isolation: "bubblewrap", ...options });
  const runtime = await provider.create({ sessionId });
  opened.push(provider, runtime);
  await runtime.connect();
  return runtime;
}

async function sh(runtime: LocalRuntime, command: string): Promise<string> {
  return (await runtime.runCommand(command, { timeoutMs: 30_000 })).content;
}

function listen(handler: (s: import("node:net").Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  return new Promise((r) =>
    server.listen(0, "127.0.0.1", () => r({ server, port: (server.address() as { port: number }).port })),
  );
}

describe.skipIf(!bwrap)("attack: escape from a bubblewrap sandbox (as the host's user)", () => {
  let box: LocalRuntime;
  let boxProvider: ReturnType<typeof localRuntime>;
  beforeAll(async () => {
    boxProvider = localRuntime({ isolation: "bubblewrap" });
    box = await boxProvider.create({ sessionId: "attacker" });
    await box.connect();
  });
  afterAll(async () => {
    await box?.close();
    await boxProvider?.close();
  });

  it("has no capabilities, no_new_privs and a seccomp filter", async () => {
    const status = await sh(
      box,
      "grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status",
    );
    expect(status).toMatch(/CapPrm:\s+0000000000000000/);
    expect(status).toMatch(/CapEff:\s+0000000000000000/);
    expect(status).toMatch(/CapAmb:\s+0000000000000000/);
    expect(status).toMatch(/NoNewPrivs:\s+1/);
    expect(status).toMatch(/Seccomp:\s+2/);
  });

  it("cannot remount a read-only bind writable and write to the host", async () => {
    const marker = `ar-escape-${process.pid}-${Date.now()}`;
    const out = await sh(
      box,
      `for d in /usr /etc /; do mount -o remount,rw,bind $d 2>&1; mount -o remount,rw $d 2>&1; done; ` +
        `echo x > /usr/${marker} 2>&1; echo x > /etc/${marker} 2>&1; echo done`,
    );
    expect(out).toContain("done");
    expect(out).toMatch(/Read-only file system/);
    expect(existsSync(`/usr/${marker}`)).toBe(false);
    expect(existsSync(`/etc/${marker}`)).toBe(false);
  });

  it("cannot mount, chroot, pivot_root, unshare, mknod or change the hostname", async () => {
    const out = await sh(
      box,
      [
        "mkdir -p /tmp/m",
        "mount -t tmpfs none /tmp/m 2>/dev/null && echo MOUNTED",
        "mount -t sysfs none /tmp/m 2>/dev/null && echo SYSFS",
        "mount -t proc none /tmp/m 2>/dev/null && echo PROC",
        "chroot / true 2>/dev/null && echo CHROOTED",
        "unshare -r true 2>/dev/null && echo UNSHARED",
        "unshare -m true 2>/dev/null && echo UNSHARED_MNT",
        "mknod /tmp/sda b 8 0 2>/dev/null && echo MKNOD",
        "hostname evil 2>/dev/null && echo HOSTNAME",
        "echo done",
      ].join("; "),
    );
    expect(out.trim()).toBe("done");
  });

  it("cannot read the host's secrets: home, shadow, state, checkout", async () => {
    const canary = join(homedir(), `.ar-canary-${process.pid}`);
    writeFileSync(canary, "host-home-secret", { mode: 0o600 });
    const repoReadme = resolve(import.meta.dirname, "../../../README.md");
    try {
      const out = await sh(
        box,
        [
          `cat ${canary} 2>/dev/null`,
          "cat /etc/shadow /etc/gshadow 2>/dev/null",
          "ls -A /root /home 2>/dev/null",
          `cat ${repoReadme} 2>/dev/null | head -c 100`,
          `cat ${resolve(import.meta.dirname, "../../../package.json")} 2>/dev/null`,
          "ls /srv /mnt /media /opt /boot /var/lib /var/log /var/cache 2>/dev/null",
          "cat ~/.modal.toml ~/.npmrc ~/.bash_history 2>/dev/null",
          "echo done",
        ].join("; "),
      );
      expect(out).not.toContain("host-home-secret");
      expect(out).not.toMatch(/^root:[^\n]*:\d+:/m);
      expect(out).not.toContain("agent-runtime");
      expect(out).not.toContain("packageManager");
      // What is left: the listing of the (empty) private /root and /home.
      expect(out.replace(/^\/(root|home):$/gm, "").trim()).toBe("done");
    } finally {
      rmSync(canary, { force: true });
    }
  });

  it("masks every file of /etc that is not world-readable", async () => {
    const hidden = spawnSync("find", ["/etc", "-xdev", "-type", "f", "!", "-perm", "-o=r"], {
      encoding: "utf8",
    })
      .stdout.split("\n")
      .filter((f) => f && !f.includes(" "));
    const sample = hidden.slice(0, 40);
    if (sample.length === 0) return; // nothing private in this /etc
    const out = await sh(
      box,
      `for f in ${sample.join(" ")}; do [ -s "$f" ] && echo "READABLE $f"; done; echo done`,
    );
    expect(out.trim()).toBe("done");
  });

  it("sees no host process and cannot touch one through /proc", async () => {
    const out = await sh(
      box,
      [
        "ls /proc | grep -E '^[0-9]+$' | wc -l",
        `cat /proc/${process.pid}/environ 2>/dev/null && echo HOSTENV`,
        "echo h > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ",
        "echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo DROPCACHES",
        "echo evil > /proc/sys/kernel/hostname 2>/dev/null && echo PROCHOST",
        "echo '|/workspace/x' > /proc/sys/kernel/core_pattern 2>/dev/null && echo COREPATTERN",
        "echo 1 > /proc/self/oom_score_adj 2>/dev/null; cat /proc/keys /proc/kcore /proc/timer_list 2>/dev/null | head -c 1 | wc -c",
        "echo done",
      ].join("; "),
    );
    const lines = out.trim().split("\n");
    expect(Number(lines[0])).toBeLessThan(20); // only the sandbox's own processes
    expect(out).not.toMatch(/HOSTENV|SYSRQ|DROPCACHES|PROCHOST|COREPATTERN/);
    expect(readFileSync("/proc/sys/kernel/core_pattern", "utf8")).not.toContain("/workspace/x");
    expect(lines.at(-2)).toBe("0");
  });

  it("cannot write to /sys, open raw sockets, ptrace or use the kernel keyring", async () => {
    const out = await sh(
      box,
      [
        "ls /sys 2>/dev/null && echo SYS",
        `python3 - <<'PY'
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
for name, fam, typ in [("packet", 17, socket.SOCK_RAW), ("rawip", socket.AF_INET, socket.SOCK_RAW)]:
    try:
        socket.socket(fam, typ, 1 if fam == socket.AF_INET else 0); print("RAW", name)
    except OSError as e:
        print("denied", name, e.errno)
print("ptrace", libc.ptrace(16, 1, 0, 0), ctypes.get_errno())
print("keyctl", libc.syscall(250 if os.uname().machine == "x86_64" else 219, 0, 0, 0, 0), ctypes.get_errno())
PY`,
      ].join("; "),
    );
    expect(out).not.toMatch(/^SYS$|RAW /m);
    expect(out).toMatch(/denied packet 1/);
    expect(out).toMatch(/denied rawip 1/);
    expect(out).toMatch(/ptrace -1 1/);
    expect(out).toMatch(/keyctl -1 1/);
  });

  it("no file action can take the server down: devices and FIFOs are refused at once", async () => {
    await sh(box, "mkfifo /tmp/fifo");
    for (const path of ["/dev/zero", "/tmp/fifo", "/dev/urandom"]) {
      const t0 = Date.now();
      const err = await box.readFile(path).catch((e: unknown) => e);
      expect(err, path).toMatchObject({
        code: "INVALID_ARGUMENT",
        details: { errorId: "NOT_A_REGULAR_FILE" },
      });
      expect(Date.now() - t0).toBeLessThan(5000);
    }
    const nul = await box.readFile("/workspace/a\u0000b").catch((e: unknown) => e);
    expect(nul).toMatchObject({ code: "INVALID_ARGUMENT", details: { errorId: "INVALID_PATH" } });
    expect((await sh(box, "echo still-alive")).trim()).toBe("still-alive");
  });

  it("ordinary work still runs: python, node, pipes, a private /tmp and HOME", async () => {
    const out = await sh(
      box,
      "python3 -c 'print(6*7)'; node -e 'console.log(require(\"os\").homedir())'; echo a | tr a b; " +
        "echo t > /tmp/x && cat /tmp/x; echo h > ~/h && cat ~/h; pwd",
    );
    expect(out.trim().split("\n")).toEqual(["42", "/root", "b", "t", "h", "/workspace"]);
  });
});

describe.skipIf(!bwrap)("attack: one sandbox against another", () => {
  it("cannot read another sandbox's workspace, /tmp or processes", async () => {
    const a = await sandbox({}, "a");
    const b = await sandbox({}, "b");
    await sh(b, "echo b-secret > /workspace/secret.txt; echo b-tmp > /tmp/secret; sleep 600 &");
    const bWorkspace = b.hostWorkspaceDir!;
    const out = await sh(
      a,
      `cat ${bWorkspace}/secret.txt /tmp/secret 2>/dev/null; ls ${tmpdir()} 2>/dev/null | grep ar-workspace; ` +
        `ls ${join(tmpdir(), "agent-runtime-local")} 2>/dev/null; ` +
        "ps -eo args 2>/dev/null | grep -c '[s]leep 600'; echo done",
    );
    expect(out).not.toContain("b-secret");
    expect(out).not.toContain("b-tmp");
    expect(out).not.toContain("ar-workspace");
    expect(out.trim().split("\n")).toEqual(["0", "done"]);
  });
});

describe.skipIf(!bwrap)("extraBinds", () => {
  it("shows a listed host path read-only, and only that", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ar-extra-"));
    writeFileSync(join(dir, "data.txt"), "shared-data");
    try {
      const box = await sandbox({ extraBinds: [{ source: dir, target: "/data" }] });
      const out = await sh(
        box,
        "cat /data/data.txt; echo; echo x > /data/new 2>&1; rm /data/data.txt 2>&1; echo done",
      );
      expect(out).toContain("shared-data");
      expect(out).toMatch(/Read-only file system/);
      expect(existsSync(join(dir, "new"))).toBe(false);
      expect(existsSync(join(dir, "data.txt"))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => localRuntime({ isolation: "bubblewrap", extraBinds: ["relative/path"] })).toThrow(
      /extraBinds\[0\]/,
    );
    expect(() => localRuntime({ isolation: "bubblewrap", extraBinds: ["/nonexistent/ar-path"] })).toThrow(
      /extraBinds: \/nonexistent\/ar-path does not exist/,
    );
  });
});

describe.skipIf(!bwrap)("attack: reaching the host's network", () => {
  let host: { server: Server; port: number };
  beforeAll(async () => {
    host = await listen((s) => s.end("host-loopback-service\n"));
  });
  afterAll(() => host.server.close());

  const probe = (port: number) =>
    `for a in 127.0.0.1 10.0.2.2 localhost; do (exec 3<>/dev/tcp/$a/${port} && head -1 <&3) 2>/dev/null; done; echo done`;

  it('network "egress" (the default): the host\'s loopback services are unreachable', async () => {
    const box = await sandbox();
    const out = await sh(box, probe(host.port));
    expect(out).not.toContain("host-loopback-service");
    expect(out.trim()).toBe("done");
    expect(await sh(box, "grep -c tap0 /proc/net/dev")).toContain("1");
  });

  it('network "none": only the sandbox\'s own loopback', async () => {
    const box = await sandbox({ network: "none" });
    const out = await sh(box, `${probe(host.port)}; grep -c tap0 /proc/net/dev`);
    expect(out).not.toContain("host-loopback-service");
    expect(out.trim().split("\n")).toEqual(["done", "0"]);
  });

  it("a host API on loopback (the agent-host's) cannot be driven from a sandbox", async () => {
    const { createServer: createHttpServer } = await import("node:http");
    let hits = 0;
    const api = createHttpServer((_req, res) => {
      hits += 1;
      res.end("ran a command in another sandbox");
    });
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()));
    const port = (api.address() as { port: number }).port;
    try {
      const box = await sandbox();
      const out = await sh(
        box,
        `python3 -c "import urllib.request as u; print(u.urlopen(u.Request('http://127.0.0.1:${port}/v1/sessions/B/actions', data=b'{}'), timeout=3).read())" 2>&1 | tail -1`,
      );
      expect(out).not.toContain("ran a command");
      expect(hits).toBe(0);
    } finally {
      api.close();
    }
  });
});

// Egress proof: a test host of our own, in a network namespace this suite makes (root only), reached
// through the NAT; and an allow-list that admits it or not.
const canMakeNetns = bwrap && isRoot && spawnSync("ip", ["-V"]).status === 0;
describe.skipIf(!canMakeNetns && !inCI)("egress through the NAT, and allow-lists", () => {
  const tag = `${process.pid % 10000}`;
  const ns = `ar-egress-${tag}`;
  const [hostIf, nsIf] = [`ar${tag}a`, `ar${tag}b`];
  const octet = (process.pid % 200) + 20;
  const outside = `10.213.${octet}.2`;
  let server: ReturnType<typeof spawn> | undefined;
  const ip = (args: string[]) => {
    const r = spawnSync("ip", args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr}`);
  };
  beforeAll(async () => {
    ip(["netns", "add", ns]);
    ip(["link", "add", hostIf, "type", "veth", "peer", "name", nsIf]);
    ip(["link", "set", nsIf, "netns", ns]);
    ip(["addr", "add", `10.213.${octet}.1/30`, "dev", hostIf]);
    ip(["link", "set", hostIf, "up"]);
    ip(["netns", "exec", ns, "ip", "addr", "add", `${outside}/30`, "dev", nsIf]);
    ip(["netns", "exec", ns, "ip", "link", "set", nsIf, "up"]);
    server = spawn(
      "ip",
      [
        "netns",
        "exec",
        ns,
        process.execPath,
        "-e",
        `require("net").createServer(s=>s.end("outside-host\\n")).listen(8080,"${outside}",()=>console.log("up"))`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((r) => server!.stdout!.once("data", () => r()));
  });
  afterAll(() => {
    server?.kill("SIGKILL");
    spawnSync("ip", ["link", "del", hostIf]);
    spawnSync("ip", ["netns", "del", ns]);
  });
  const fetchOutside = `(exec 3<>/dev/tcp/${outside}/8080 && head -1 <&3) 2>&1; echo done`;

  it('network "egress" reaches an outside host', async () => {
    const box = await sandbox();
    expect(await sh(box, fetchOutside)).toContain("outside-host");
  });

  it("starting the NAT leaves the host's mounts alone: named network namespaces (Podman's, ip netns) survive", async () => {
    const mounted = () => readFileSync("/proc/self/mountinfo", "utf8").includes(`/run/netns/${ns} `);
    expect(mounted()).toBe(true);
    const box = await sandbox();
    expect(await sh(box, fetchOutside)).toContain("outside-host");
    // slirp4netns --enable-sandbox, run as root in the host's mount namespace, used to unmount them.
    expect(mounted()).toBe(true);
    expect(spawnSync("ip", ["netns", "exec", ns, "true"]).status).toBe(0);
  });

  it("network.allow admits the listed CIDR and nothing else", async () => {
    const allowed = await sandbox({ network: { allow: [`10.213.${octet}.0/30`] } });
    expect(await sh(allowed, fetchOutside)).toContain("outside-host");
    const other = await sandbox({ network: { allow: ["192.0.2.0/24", "localhost"] } });
    const out = await sh(other, fetchOutside);
    expect(out).not.toContain("outside-host");
    expect(out).toMatch(/refused|prohibited|unreachable|denied|no route/i);
    // The sandbox cannot change its own firewall.
    expect(await sh(other, "nft flush ruleset 2>&1; echo rc=$?")).toMatch(/rc=[1-9]/);
    expect(await sh(other, fetchOutside)).not.toContain("outside-host");
  });

  it("network.allow rejects entries that are not addresses, CIDRs or host names", async () => {
    expect(() => localRuntime({ isolation: "bubblewrap", network: { allow: ["not a host!"] } })).toThrow(
      /network.allow\[0\]: not an IP address, CIDR or host name/,
    );
    expect(() => localRuntime({ isolation: "bubblewrap", network: "open" as never })).toThrow(
      /network: expected "egress", "none", true, false or \{ allow/,
    );
    expect(() => localRuntime({ isolation: "bubblewrap", network: { allow: [] } })).toThrow(
      /network.allow: list at least one/,
    );
    const bad = localRuntime({ isolation: "bubblewrap", network: { allow: ["10.0.0.0/99"] } });
    opened.push(bad);
    const runtime = await bad.create({ sessionId: "bad-cidr" });
    opened.push(runtime);
    await expect(runtime.connect()).rejects.toThrow(/prefix length outside 0..32/);
  });
});

describe.skipIf(!bwrap)("attack: processes that outlive the sandbox", () => {
  const countSleeps = (marker: string) =>
    spawnSync("pgrep", ["-f", `sleep ${marker}`], { encoding: "utf8" })
      .stdout.split("\n")
      .filter(Boolean).length;
  const waitZero = async (marker: string, ms: number) => {
    const deadline = Date.now() + ms;
    while (countSleeps(marker) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return countSleeps(marker);
  };
  const spawnJobs = async (runtime: LocalRuntime, marker: string) => {
    await runtime.runCommand(`sleep ${marker} & (sleep ${marker}; echo never) & setsid sleep ${marker} &`);
    // `setsid` forks when it leads its process group (a job of an interactive shell does), and its parent, whose
    // command line is `setsid sleep …`, lives a moment longer: wait until exactly the three sleeps remain.
    const deadline = Date.now() + 10_000;
    while (countSleeps(marker) !== 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(countSleeps(marker)).toBe(3);
  };

  it.each(["bubblewrap", "none"] as const)(
    "kill -9 of the action-server takes every process of the sandbox within 2 s (isolation %s)",
    async (isolation) => {
      const runtime = await sandbox({ isolation });
      const marker = `${1000 + Math.floor(Math.random() * 1000)}.${process.pid}1`;
      await spawnJobs(runtime, marker);
      const pending = runtime
        .runCommand(`sleep ${marker}`, { blocking: true, timeoutMs: 60_000 })
        .catch(() => "gone");
      await new Promise((r) => setTimeout(r, 200));
      // The server: under bubblewrap the child of the sandbox's init; without, the process we spawned.
      const initPid = Number(runtime.handle().data.initPid);
      const ours =
        isolation === "bubblewrap"
          ? spawnSync("pgrep", ["-P", String(initPid)], { encoding: "utf8" })
              .stdout.split("\n")
              .filter(Boolean)
              .map(Number)
          : [runtime.pid!];
      expect(ours.length).toBeGreaterThan(0);
      const t0 = Date.now();
      for (const pid of ours) process.kill(pid, "SIGKILL");
      expect(await pending).toBe("gone");
      expect(await waitZero(marker, 2000)).toBe(0);
      expect(Date.now() - t0).toBeLessThan(2500);
    },
  );

  it.each(["bubblewrap", "none"] as const)(
    "close leaves 0 processes, setsid ones included (isolation %s)",
    async (isolation) => {
      const runtime = await sandbox({ isolation });
      const marker = `${2000 + Math.floor(Math.random() * 1000)}.${process.pid}2`;
      await spawnJobs(runtime, marker);
      const leader = runtime.pid!;
      await runtime.close();
      expect(await waitZero(marker, 2000)).toBe(0);
      expect(processAlive(leader)).toBe(false);
      if (isolation === "none") expect(sessionMembers(leader)).toEqual([]);
    },
  );

  it("a kept-alive sandbox re-attached by a new provider closes with 0 processes", async () => {
    const first = localRuntime({ isolation: "bubblewrap", keepAlive: true });
    const runtime = await first.create({ sessionId: "kept" });
    await runtime.connect();
    const marker = `${3000 + Math.floor(Math.random() * 1000)}.${process.pid}3`;
    await spawnJobs(runtime, marker);
    const handle = runtime.handle();
    await runtime.close();
    await first.close();
    expect(countSleeps(marker)).toBe(3);
    const second = localRuntime({ isolation: "bubblewrap" });
    opened.push(second);
    const again = await second.attach(handle);
    await again.connect();
    await again.close();
    expect(await waitZero(marker, 2000)).toBe(0);
    const natPid = Number(handle.data.natPid);
    if (natPid) expect(processAlive(natPid)).toBe(false);
  });
});

describe.skipIf(!bwrap || (!isRoot && !inCI))("attack: fork bombs against maxProcesses (root host)", () => {
  it("maxProcesses holds for root: a pids cgroup caps the sandbox", async () => {
    expect(pidsCgroupBase()).toBeDefined();
    const runtime = await sandbox({ limits: { maxProcesses: 64 } });
    // 300 long-lived children, then 400 short forks: only what fits under the cap may start.
    const out = await sh(
      runtime,
      `python3 - <<'PY'
import os, time
kids, fail = [], 0
for i in range(300):
    try:
        pid = os.fork()
        if pid == 0:
            time.sleep(30); os._exit(0)
        kids.append(pid)
    except OSError:
        fail += 1
quick_fail = 0
for i in range(400):
    try:
        pid = os.fork()
        if pid == 0: os._exit(0)
        os.waitpid(pid, 0)
    except OSError:
        quick_fail += 1
alive = len([n for n in os.listdir("/proc") if n.isdigit()])
for k in kids: os.kill(k, 9)
for k in kids: os.waitpid(k, 0)
print(len(kids), fail, quick_fail, alive)
PY`,
    );
    const [kids, failed, quickFailed, alive] = out.trim().split(/\s+/).map(Number);
    expect(kids! + failed!).toBe(300);
    expect(kids).toBeLessThan(64);
    expect(failed).toBeGreaterThan(236);
    expect(quickFailed).toBe(400);
    expect(alive).toBeLessThanOrEqual(64);
    // The sandbox still answers, and close takes everything down.
    expect((await sh(runtime, "echo alive")).trim()).toBe("alive");
  });

  it("a given workspace on the host keeps its files; nothing of the sandbox can follow a symlink out", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ar-given-"));
    try {
      const runtime = await sandbox({ workspaceDir: dir });
      const out = await sh(
        runtime,
        `ln -s ${homedir()} /workspace/home-link; ls /workspace/home-link/ 2>&1 | head -3; echo done`,
      );
      expect(out).not.toContain(".ar-canary");
      expect(out).toMatch(/No such file|done/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
