import { spawn } from "node:child_process";
import { get } from "node:https";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { ModalClient, Sandbox } from "modal";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ModalEmulator, startModalEmulator } from "../src/index.js";
import { clientFor, eventually } from "./helpers.js";

const SERVER = `require("node:http").createServer((q, s) => s.end("hello " + process.env.WHO + " " + q.url))
  .listen(Number(process.env.PORT), "0.0.0.0")`;

function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { ca, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => {
        body += d.toString();
      });
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

async function getWhenUp(url: string, ca: string): Promise<string> {
  let body = "";
  await eventually(async () => {
    body = await httpsGet(url, ca).catch(() => "");
    return body !== "";
  }, 10_000);
  return body;
}

let emu: ModalEmulator;
let client: ModalClient;
const sandboxes: Sandbox[] = [];

beforeAll(async () => {
  emu = await startModalEmulator();
  client = clientFor(emu);
});
afterAll(async () => {
  await emu.close();
});

async function serve(
  who: string,
  port: number,
  extra: { unencryptedPorts?: number[] } = {},
): Promise<Sandbox> {
  const app = await client.apps.fromName("tunnels", { createIfMissing: true });
  const sb = await client.sandboxes.create(app, client.images.fromRegistry("node:20"), {
    command: ["node", "-e", SERVER],
    env: { WHO: who, PORT: String(port) },
    encryptedPorts: extra.unencryptedPorts ? [] : [port],
    ...extra,
  });
  sandboxes.push(sb);
  return sb;
}

describe("tunnels are https:// URLs behind a TLS proxy with the emulator's CA", () => {
  test("a real HTTPS request reaches the sandbox's server", async () => {
    const sb = await serve("one", 8080);
    const tunnel = (await sb.tunnels())[8080]!;
    expect(tunnel.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(tunnel.tlsSocket).toEqual([tunnel.host, tunnel.port]);
    expect(await getWhenUp(`${tunnel.url}/path?q=1`, emu.caCertPem)).toBe("hello one /path?q=1");
    // Without the CA the certificate is not trusted.
    await expect(httpsGet(tunnel.url, "")).rejects.toThrow(/certificate/i);
  });

  test.skipIf(process.platform !== "linux")(
    "two sandboxes expose the same container port at once (a network namespace each under bwrap; moved to free host ports without)",
    async () => {
      const [a, b] = await Promise.all([serve("a", 8081), serve("b", 8081)]);
      const [ta, tb] = [(await a.tunnels())[8081]!, (await b.tunnels())[8081]!];
      expect(ta.port).not.toBe(tb.port);
      expect(await getWhenUp(ta.url, emu.caCertPem)).toBe("hello a /");
      expect(await getWhenUp(tb.url, emu.caCertPem)).toBe("hello b /");
      // Without network namespaces the port named in PORT was moved, for each sandbox to a port of its own.
      const hostPorts = emu
        .listSandboxes()
        .filter((s) => s.sandboxId === a.sandboxId || s.sandboxId === b.sandboxId)
        .map((s) => s.tunnels[0]?.hostPort);
      if (emu.isolation === "bwrap") expect(hostPorts).toEqual([undefined, undefined]);
      else expect(new Set(hostPorts).size).toBe(2);
    },
  );

  test("NODE_EXTRA_CA_CERTS from env() is all a Node client needs (global fetch)", async () => {
    const sb = await serve("fetch", 8082);
    const url = (await sb.tunnels())[8082]!.url;
    await getWhenUp(url, emu.caCertPem);
    const run = (env: Record<string, string>): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const child = spawn(
          process.execPath,
          [
            "-e",
            `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => console.log(t), () => process.exit(3))`,
          ],
          { env: { PATH: process.env["PATH"] ?? "", ...env }, stdio: ["ignore", "pipe", "ignore"] },
        );
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
        });
        child.on("close", (code) => resolve({ code, out }));
      });
    expect(await run({ NODE_EXTRA_CA_CERTS: emu.env()["NODE_EXTRA_CA_CERTS"]! })).toEqual({
      code: 0,
      out: "hello fetch /\n",
    });
    expect((await run({})).code).toBe(3);
  });

  test("unencrypted ports also get a plain TCP endpoint (tcpSocket)", async () => {
    const sb = await serve("tcp", 8083, { unencryptedPorts: [8083] });
    const tunnel = (await sb.tunnels())[8083]!;
    const [host, port] = tunnel.tcpSocket;
    let reply = "";
    await eventually(async () => {
      reply = await new Promise<string>((resolve) => {
        const socket = netConnect(port, host, () => socket.write("GET /raw HTTP/1.0\r\n\r\n"));
        let data = "";
        socket.on("data", (d: Buffer) => {
          data += d.toString();
        });
        socket.on("close", () => resolve(data));
        socket.on("error", () => resolve(""));
      });
      return reply.includes("hello tcp /raw");
    }, 10_000);
    expect(reply).toMatch(/^HTTP\/1\.[01] 200 OK/);
  });

  test("faults.cutTunnels drops open connections and refuses new ones for a while; terminate closes the tunnel", async () => {
    const sb = await serve("cut", 8084);
    const tunnel = (await sb.tunnels())[8084]!;
    await getWhenUp(tunnel.url, emu.caCertPem);
    const socket = tlsConnect({ host: tunnel.host, port: tunnel.port, ca: emu.caCertPem });
    await new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => {});
    expect(emu.faults.cutTunnels(sb.sandboxId, 400)).toBe(true);
    await closed;
    await expect(httpsGet(tunnel.url, emu.caCertPem)).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 450));
    expect(await httpsGet(tunnel.url, emu.caCertPem)).toBe("hello cut /");

    await sb.terminate({ wait: true });
    await expect(httpsGet(tunnel.url, emu.caCertPem)).rejects.toThrow();
    expect(emu.faults.cutTunnels(sb.sandboxId)).toBe(false);
  });

  test("V1 sandboxes get their tunnels through SandboxGetTunnels", async () => {
    const v1 = clientFor(emu, "v1");
    const app = await v1.apps.fromName("tunnels", { createIfMissing: true });
    const sb = await v1.sandboxes.create(app, v1.images.fromRegistry("node:20"), {
      command: ["node", "-e", SERVER],
      env: { WHO: "v1", PORT: "8085" },
      encryptedPorts: [8085],
    });
    sandboxes.push(sb);
    expect(sb.sandboxId).toMatch(/^sb-[0-9A-Za-z]{22}$/);
    const tunnel = (await sb.tunnels())[8085]!;
    expect(await getWhenUp(tunnel.url, emu.caCertPem)).toBe("hello v1 /");
    v1.close();
  });
});
