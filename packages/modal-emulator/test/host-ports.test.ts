import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { freeHostPort, moveNamedPorts } from "../src/host-ports.js";
import { HostView } from "../src/isolation.js";

describe('isolation "none": what the emulator rewrites in a sandbox command', () => {
  const hostDir = mkdtempSync(join(tmpdir(), "modal-emulator-argv-"));
  const server = join(hostDir, "server.js");
  writeFileSync(server, "");
  afterAll(() => rmSync(hostDir, { recursive: true, force: true }));
  const view = new HostView("none", ["/workspace"]);
  const root = "/state/sandboxes/sb-1";

  test("paths in the sandbox's private area map under its root; host files named in argv stay usable", () => {
    expect(view.remapArg(root, "/workspace")).toBe(`${root}/workspace`);
    expect(view.remapArg(root, "--working-dir=/workspace/src")).toBe(`--working-dir=${root}/workspace/src`);
    expect(view.remapArg(root, "/tmp/out.txt")).toBe(`${root}/tmp/out.txt`);
    // Under bwrap the file's directory is bound read-only; without it the host file is used as it is.
    expect(view.remapArg(root, server)).toBe(server);
    // The host view is read as it is.
    expect(view.remapArg(root, "/usr/bin/env")).toBe("/usr/bin/env");
    // Not a path, or a path inside a shell string: left alone.
    expect(view.remapArg(root, "cat /workspace/x")).toBe("cat /workspace/x");
    expect(view.remapArg(root, "8000")).toBe("8000");
  });

  test("ports the command names move to free host ports (argv, --flag=N, *PORT* variables); others stay", async () => {
    const picks = [41001, 41002];
    const moved = await moveNamedPorts(
      ["node", "server.js", "8000", "--metrics=9000", "--size=7000"],
      { PORT: "8000", WHO: "8000", METRICS_PORT: "9000" },
      [8000, 9000, 6000],
      async () => picks.shift()!,
    );
    expect(moved.argv).toEqual(["node", "server.js", "41001", "--metrics=41002", "--size=7000"]);
    expect(moved.env).toEqual({ PORT: "41001", METRICS_PORT: "41002" });
    expect([...moved.hostPorts]).toEqual([
      [8000, 41001],
      [9000, 41002],
    ]);
  });
});

describe("freeHostPort", () => {
  test("draws ports from below the kernel's ephemeral range (where listen(0) elsewhere cannot take them), and not repeated", async () => {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    const ports: number[] = [];
    for (let i = 0; i < 200; i++) ports.push(await freeHostPort());
    expect(new Set(ports).size).toBe(200);
    if (low! > 12_000) for (const p of ports) expect(p).toBeLessThan(low!);
  });
});
