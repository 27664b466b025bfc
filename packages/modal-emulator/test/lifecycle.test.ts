import { existsSync } from "node:fs";
import { get } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { InvalidArgumentError, isRuntimeError } from "@agent-runtime/runtime-core";
import { describe, expect, onTestFinished, test } from "vitest";
import { startModalEmulator } from "../src/index.js";
import { alive, clientFor, eventually, processesMatching } from "./helpers.js";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      server.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

describe("options", () => {
  test("invalid options are rejected with every issue as path: message", async () => {
    const err = await startModalEmulator({
      port: -1,
      // @ts-expect-error: not an isolation mode
      isolation: "docker",
      privateDirs: ["/a/b"],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    const issues = (err as InvalidArgumentError).issues.join("\n");
    expect(issues).toMatch(/^port: /m);
    expect(issues).toMatch(/^isolation: /m);
    expect(issues).toMatch(/^privateDirs\[0\]: must be a top-level absolute directory/m);
  });

  test('isolation "bwrap" without bwrap fails with UNSUPPORTED and says how to fix it', async () => {
    const path = process.env["PATH"];
    process.env["PATH"] = "/nonexistent";
    try {
      const err = await startModalEmulator({ isolation: "bwrap" }).catch((e: unknown) => e);
      expect(isRuntimeError(err, "UNSUPPORTED")).toBe(true);
      expect((err as Error).message).toMatch(/bubblewrap.*isolation: "none"/s);
    } finally {
      process.env["PATH"] = path;
    }
  });
});

describe("close", () => {
  test("kills every sandbox process group, removes its state, and is idempotent; the secret stays out of JSON", async () => {
    const emu = await startModalEmulator();
    onTestFinished(() => emu.close());
    expect(JSON.stringify(emu)).not.toContain(emu.tokenSecret);
    expect(Object.keys(emu.env()).sort()).toEqual([
      "MODAL_SERVER_URL",
      "MODAL_TOKEN_ID",
      "MODAL_TOKEN_SECRET",
      "NODE_EXTRA_CA_CERTS",
    ]);
    const client = clientFor(emu);
    const app = await client.apps.fromName("close", { createIfMissing: true });
    const image = client.images.fromRegistry("alpine:3.21");
    // A background grandchild that ignores SIGTERM, in a sandbox and in an exec.
    const marker = `${300 + Math.floor(Math.random() * 1000)}.4242`;
    const sb = await client.sandboxes.create(app, image, {
      command: ["sh", "-c", `trap '' TERM; sleep ${marker} & sleep ${marker}`],
    });
    const p = await sb.exec(["sh", "-c", `trap '' TERM; sleep ${marker} & sleep ${marker}`]);
    void p.wait().catch(() => {});
    const pid = emu.listSandboxes()[0]!.pid;
    expect(alive(pid)).toBe(true);
    // Both shells' foreground and background sleeps are up.
    await eventually(() => processesMatching(`sleep ${marker}`).length >= 4);
    await emu.close();
    await emu.close();
    expect(alive(pid)).toBe(false);
    expect(processesMatching(`sleep ${marker}`)).toEqual([]);
    expect(emu.listSandboxes().every((s) => !s.running)).toBe(true);
    expect(existsSync(emu.stateDir)).toBe(false);
    client.close();
  });
});

describe('isolation "none"', () => {
  test("paths are remapped under the sandbox root, HOME is private, container port = host port", async () => {
    const emu = await startModalEmulator({ isolation: "none" });
    try {
      expect(emu.isolation).toBe("none");
      const client = clientFor(emu);
      const app = await client.apps.fromName("none", { createIfMissing: true });
      const port = await freePort();
      const sb = await client.sandboxes.create(app, client.images.fromRegistry("node:20"), {
        command: [
          "node",
          "-e",
          `require("node:http").createServer((q, s) => s.end(process.cwd())).listen(${port}, "127.0.0.1")`,
        ],
        workdir: "/workspace",
        encryptedPorts: [port],
      });
      const root = emu.listSandboxes()[0]!.root;

      await sb.filesystem.writeText("mapped", "/workspace/x.txt");
      const cat = await sb.exec(["cat", "/workspace/x.txt"]);
      expect(await cat.stdout.readText()).toBe("mapped");
      const env = await sb.exec(["sh", "-c", 'echo "$HOME $TMPDIR"; pwd']);
      expect(await env.stdout.readText()).toBe(
        `${join(root, "root")} ${join(root, "tmp")}\n${join(root, "workspace")}\n`,
      );

      const url = (await sb.tunnels())[port]!.url;
      let body = "";
      await eventually(async () => {
        body = await new Promise<string>((resolve) => {
          get(url, { ca: emu.caCertPem, agent: false }, (res) => {
            let b = "";
            res.on("data", (d: Buffer) => {
              b += d.toString();
            });
            res.on("end", () => resolve(b));
          }).on("error", () => resolve(""));
        });
        return body !== "";
      }, 10_000);
      expect(body).toBe(join(root, "workspace"));
      const pid = emu.listSandboxes()[0]!.pid;
      await emu.close();
      expect(alive(pid)).toBe(false);
      client.close();
    } finally {
      await emu.close();
    }
  });

  test("a command that does not exist ends the sandbox with 127 and says why; create does not wait on its tunnels", async () => {
    const emu = await startModalEmulator({ isolation: "none" });
    const client = clientFor(emu);
    try {
      const app = await client.apps.fromName("none-missing", { createIfMissing: true });
      const sb = await client.sandboxes.create(app, client.images.fromRegistry("acme/agent:1"), {
        command: ["modal-emulator-no-such-command", "8000"],
        encryptedPorts: [8000],
      });
      expect(await sb.wait()).toBe(127);
      expect(await sb.stderr.readText()).toContain("cannot start modal-emulator-no-such-command");
      expect(emu.listSandboxes()[0]!.tunnels).toEqual([]);
    } finally {
      client.close();
      await emu.close();
    }
  });
});
