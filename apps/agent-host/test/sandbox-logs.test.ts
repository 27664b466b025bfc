import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { LogFields, Logger } from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, test } from "vitest";
import { startEmulatedModal } from "../src/cli/emulator.js";
import { cliLogger, main } from "../src/cli.js";
import { parseHostConfig } from "../src/config.js";
import { AgentHost } from "../src/host.js";
import { capture, tempDir } from "./helpers.js";

// Sandbox lifecycle logs, --log-level, serve --emulator, and a failed start's output in the session's events.

const dir = tempDir("agent-host-logs-");
afterAll(() => dir.cleanup());

function recordingLogger(): {
  logger: Logger;
  lines: { level: string; message: string; fields?: LogFields }[];
} {
  const lines: { level: string; message: string; fields?: LogFields }[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: LogFields): void => {
      lines.push({ level, message, ...(fields ? { fields } : {}) });
    };
  return { logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") }, lines };
}

/** A host on the modal runtime against an in-process modal-emulator (what `serve --emulator` composes). */
async function emulatedHost(name: string, runtimeOptions: Record<string, unknown> = {}) {
  const base = parseHostConfig({
    runtime: { plugin: "modal", options: runtimeOptions },
    storage: { stateDir: join(dir.path, name) },
    secrets: { enabled: false },
  });
  const emulator = await startEmulatedModal(base, capture().stream);
  const { logger, lines } = recordingLogger();
  const host = await AgentHost.open(emulator.config, { logger, env: {} });
  return {
    host,
    lines,
    close: async () => {
      await host.close();
      await emulator.close();
    },
  };
}

describe("sandbox lifecycle", () => {
  test("info lines: starting, created (id), ready (startMs), closed (upMs); no keys in them", async () => {
    const t = await emulatedHost("lifecycle");
    try {
      const session = await t.host.createSession({});
      const ready = await t.host.waitSession(session.id, 60_000);
      expect(ready.status).toBe("ready");
      await t.host.deleteSession(session.id);
      const info = t.lines.filter((l) => l.level === "info" && l.message.startsWith("sandbox "));
      expect(info.map((l) => l.message)).toEqual([
        "sandbox starting",
        "sandbox created",
        "sandbox ready",
        "sandbox closed",
      ]);
      expect(info[1]?.fields).toMatchObject({
        sessionId: session.id,
        backend: "modal",
        sandboxId: expect.stringMatching(/^sb-/),
      });
      expect(info[2]?.fields?.startMs).toEqual(expect.any(Number));
      expect(info[3]?.fields?.upMs).toEqual(expect.any(Number));
      expect(JSON.stringify(t.lines)).not.toMatch(/sessionApiKey|SESSION_API_KEY/);
    } finally {
      await t.close();
    }
  }, 90_000);

  test("a failed start: the command's stderr in the session error (details.output), its status event and the log", async () => {
    const t = await emulatedHost("failed", {
      serverCommand: [
        process.execPath,
        "-e",
        "console.error('E_CONFIG: no such file /srv/agent.toml'); process.exit(2)",
      ],
    });
    try {
      const session = await t.host.createSession({});
      const failed = await t.host.waitSession(session.id, 60_000);
      expect(failed.status).toBe("error");
      expect(failed.error?.code).toBe("DISCONNECTED");
      expect(failed.error?.message).toContain("its start command exited with code 2");
      expect(failed.error?.message).toContain("  | E_CONFIG: no such file /srv/agent.toml");
      expect(failed.error?.details?.output).toEqual(["E_CONFIG: no such file /srv/agent.toml"]);
      const events = t.host.store.eventsAfter(session.id, 0);
      const status = events.find(
        (e) => e.type === "status" && (e.data as { status?: string }).status === "STATUS$ERROR",
      );
      expect((status?.data as { message?: string } | undefined)?.message).toContain(
        "E_CONFIG: no such file /srv/agent.toml",
      );
      const logged = t.lines.find((l) => l.message === "sandbox failed");
      expect(logged?.level).toBe("info");
      expect(logged?.fields).toMatchObject({ sessionId: session.id, status: "ERROR", phase: "start" });
      expect(String(logged?.fields?.reason)).toContain("E_CONFIG: no such file /srv/agent.toml");
    } finally {
      await t.close();
    }
  }, 90_000);
});

describe("--log-level", () => {
  test("drops lines below the level; cli style leaves status changes to progress lines unless debug", () => {
    const out = capture();
    const log = cliLogger(out.stream, "warn", "cli");
    log.info("sandbox ready", { startMs: 5 });
    log.warn("something odd", { sessionId: "s1" });
    log.error("runtime status STATUS$ERROR");
    expect(out.text()).toBe('warning: something odd {"sessionId":"s1"}\n');
    const debug = capture();
    const verbose = cliLogger(debug.stream, "debug", "cli");
    verbose.debug("runtime status STATUS$READY");
    verbose.info("sandbox ready", { startMs: 5 });
    expect(debug.text()).toBe('debug: runtime status STATUS$READY\ninfo: sandbox ready {"startMs":5}\n');
    const serve = capture();
    cliLogger(serve.stream, "info", "serve").info("sandbox closed");
    expect(serve.text()).toMatch(/^\d{4}-\d\d-\d\dT\S+Z info sandbox closed\n$/);
  });

  test("an unknown level is a usage error (exit 2), from the flag or AGENT_HOST_LOG_LEVEL", async () => {
    const err = capture();
    expect(
      await main(["demo", "--log-level", "loud"], { stdout: capture().stream, stderr: err.stream, env: {} }),
    ).toBe(2);
    expect(err.text()).toContain('--log-level: expected debug, info, warn or error, got "loud"');
    const envErr = capture();
    expect(
      await main(["demo"], {
        stdout: capture().stream,
        stderr: envErr.stream,
        env: { AGENT_HOST_LOG_LEVEL: "chatty" },
      }),
    ).toBe(2);
    expect(envErr.text()).toContain(
      'AGENT_HOST_LOG_LEVEL: expected debug, info, warn or error, got "chatty"',
    );
  });
});

const cli = join(import.meta.dirname, "..", "dist", "cli.js");

describe.skipIf(!existsSync(cli))("serve --emulator (built CLI)", () => {
  test("serves the modal runtime against an in-process emulator and logs sandbox lifecycles at info", async () => {
    const state = join(dir.path, "serve-emulator");
    const child = spawn(process.execPath, [cli, "serve", "--emulator", "--port", "0", "--state-dir", state], {
      env: { ...process.env, HOME: dir.path, SHLVL: "1", AGENT_HOST_TOKEN: "t".repeat(32) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      const deadline = Date.now() + 30_000;
      while (!/serving on (http:\/\/\S+)/.test(stdout) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const url = /serving on (http:\/\/\S+)/.exec(stdout)?.[1];
      expect(url, `${stdout}\n${stderr}`).toBeDefined();
      expect(stdout).toMatch(/modal-emulator: offline Modal on http:\/\/127\.0\.0\.1:\d+/);
      expect(stdout).toContain("(runtime modal,");
      const headers = { authorization: `Bearer ${"t".repeat(32)}`, "content-type": "application/json" };
      const created = await fetch(`${url}/v1/sessions`, { method: "POST", headers, body: "{}" });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      const ready = await fetch(`${url}/v1/sessions/${id}?waitMs=60000`, { headers });
      expect(((await ready.json()) as { status: string }).status).toBe("ready");
      expect(stderr).toMatch(
        / info sandbox ready \{"sessionId":"[^"]+","backend":"modal","sandboxId":"sb-[^"]+","startMs":\d+\}/,
      );
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
    expect(stderr).toMatch(/ info sandbox closed /);
  }, 120_000);
});
