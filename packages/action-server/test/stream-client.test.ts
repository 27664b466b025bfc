import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ActionExecutionClient,
  type CmdOutputObservation,
  cmdRun,
  type Redactor,
} from "@agent-runtime/runtime-core";
import { ServerRuntime } from "@agent-runtime/runtime-core/testing";
import { afterAll, describe, expect, it } from "vitest";
import { type ActionServerHandle, startActionServer } from "../src/index.js";

// runtime-core's client and Runtime.run against the real server: the caller's side of the streaming form, over
// TCP and over a unix socket (how runtime-local reaches a server under bubblewrap).

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

async function server(transport: "tcp" | "unix"): Promise<{ handle: ActionServerHandle; key: string }> {
  const root = mkdtempSync(join(tmpdir(), "ar-as-stream-"));
  roots.push(root);
  mkdirSync(join(root, "home"));
  const key = `key-${transport}-0123456789`;
  const handle = await startActionServer({
    workingDir: join(root, "work"),
    host: "127.0.0.1",
    port: 0,
    sessionApiKey: key,
    noChangeTimeoutMs: 2000,
    shellEnv: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(root, "home"), LANG: "C.UTF-8" },
    ...(transport === "unix" ? { socketPath: join(root, "server.sock") } : {}),
  });
  return { handle, key };
}

const SECRET = "ghp_live0123456789abcdefSECRET";
const redactor: Redactor = {
  isEmpty: false,
  redact: (t) => t.split(SECRET).join("[redacted]"),
  redactDeep: <T>(v: T): T => JSON.parse(JSON.stringify(v).split(SECRET).join("[redacted]")) as T,
};

/** runtime-core's Runtime on the in-process server: closing it closes the server. */
function inProcessRuntime({ handle, key }: { handle: ActionServerHandle; key: string }): ServerRuntime {
  return new ServerRuntime({
    backend: "in-process",
    sessionId: "s-live",
    sandbox: {
      sandboxId: "in-process",
      url: handle.url,
      sessionApiKey: key,
      ...(handle.socketPath ? { socketPath: handle.socketPath } : {}),
    },
    redactor,
    capabilities: { fileTransfer: true },
    onDestroy: () => handle.close(),
  });
}

/**
 * Five lines, each printed only once the caller received the previous one (`ack(text)` creates `ack<i>` for each
 * `line<i>` seen): chunks cannot merge on a loaded machine, and a server that held output back would never
 * let the command finish (it fails at the action's 30 s timeout). Once the files exist it runs straight through.
 */
function fiveLines(): { command: string; ack: (text: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), "ar-as-ack-"));
  roots.push(dir);
  const command = `for i in 1 2 3 4 5; do echo line$i; while [ ! -e ${dir}/ack$i ]; do sleep 0.01; done; done`;
  const ack = (text: string) => {
    for (const [, i] of text.matchAll(/line(\d)/g)) writeFileSync(join(dir, `ack${i}`), "");
  };
  return { command, ack };
}

describe.each(["tcp", "unix"] as const)("a runtime-core caller follows a command live (%s)", (transport) => {
  it("Runtime.run({ onOutput }) sees each line before the command ends, then the observation", async () => {
    const runtime = inProcessRuntime(await server(transport));
    try {
      await runtime.connect();
      const chunks: string[] = [];
      const lines = fiveLines();
      const obs = (await runtime.run(cmdRun(lines.command, { blocking: true, timeoutMs: 30_000 }), {
        onOutput: (text) => {
          chunks.push(text);
          lines.ack(text);
        },
      })) as CmdOutputObservation;
      expect(chunks.join("")).toBe("line1\nline2\nline3\nline4\nline5\n");
      // One chunk a line at least: each was received before the next one was printed.
      expect(chunks.length).toBeGreaterThanOrEqual(5);
      expect(obs.content).toBe("line1\nline2\nline3\nline4\nline5");
      expect(obs.extras.metadata.exit_code).toBe(0);
    } finally {
      await runtime.close();
    }
  });

  it("redacts a secret the program prints in two pieces 200 ms apart", async () => {
    const runtime = inProcessRuntime(await server(transport));
    try {
      await runtime.connect();
      const chunks: string[] = [];
      const half = SECRET.length / 2;
      const command = `printf 'token=${SECRET.slice(0, half)}'; sleep 0.2; printf '${SECRET.slice(half)} end\\n'`;
      const obs = await runtime.run(cmdRun(command, { blocking: true, timeoutMs: 30_000 }), {
        onOutput: (text) => chunks.push(text),
      });
      expect(chunks.join("")).toBe("token=[redacted] end\n");
      for (const c of chunks) {
        expect(c).not.toContain(SECRET.slice(0, half));
        expect(c).not.toContain(SECRET.slice(half));
      }
      expect(obs.content).toBe("token=[redacted] end");
    } finally {
      await runtime.close();
    }
  });
});

it("ActionExecutionClient.executeAction({ onOutput }) gets raw chunks; without it, the plain form", async () => {
  const target = await server("tcp");
  const client = new ActionExecutionClient({ baseUrl: target.handle.url, sessionApiKey: target.key });
  try {
    const chunks: string[] = [];
    const lines = fiveLines();
    const streamed = await client.executeAction(
      cmdRun(lines.command, { blocking: true, timeoutMs: 30_000 }),
      {
        onOutput: (t) => {
          chunks.push(t);
          lines.ack(t);
        },
      },
    );
    expect(chunks.length).toBeGreaterThanOrEqual(5);
    // The acknowledgements exist now: the plain form runs the same command straight through.
    const plain = await client.executeAction(cmdRun(lines.command, { blocking: true, timeoutMs: 30_000 }));
    expect(streamed.content).toBe(plain.content);
    expect(streamed.observation).toBe(plain.observation);
  } finally {
    client.close();
    await target.handle.close();
  }
});
