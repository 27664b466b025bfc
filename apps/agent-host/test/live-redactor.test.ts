import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  definePlugin,
  type LogFields,
  type Logger,
  type PluginContext,
  RuntimeStatus,
} from "@agent-runtime/runtime-core";
import { LocalRuntimeOptionsSchema, localRuntimePlugin } from "@agent-runtime/runtime-local";
import { afterAll, describe, expect, test } from "vitest";
import { composePlugins } from "../src/compose.js";
import { parseHostConfig } from "../src/config.js";
import { builtinRegistry } from "../src/plugins.js";
import { type Json, readySession, runCommand, startTestServer, type TestServer, tempDir } from "./helpers.js";

// The secrets plugin's env provider reads the host's environment at each resolve: a value rotated between two
// sessions is known to the first session's resolution only. The secrets plugin's live redactor knows both.
const PREFIX = `AGENT_HOST_LIVE_REDACT_${process.pid}_`;
const VARIABLE = `${PREFIX}API_TOKEN`;
const dir = tempDir("agent-host-live-redactor-");
const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  delete process.env[VARIABLE];
  dir.cleanup();
});

/** A logger that keeps every line (message and fields) as text. */
function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const capture = (level: string) => (message: string, fields?: LogFields) => {
    lines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ""}`);
  };
  return {
    lines,
    logger: {
      debug: capture("debug"),
      info: capture("info"),
      warn: capture("warn"),
      error: capture("error"),
    },
  };
}

const newSecret = (): string => `sk-live-${randomBytes(16).toString("hex")}`;

describe("the secrets plugin's live redactor", () => {
  test("a secret resolved for one session is redacted from the host's logs, another session's stored records and its events, also after the first session closed", async () => {
    const first = newSecret();
    process.env[VARIABLE] = first;
    // The runtime plugin is runtime-local, seen through a plugin that keeps the context the host hands it.
    const contexts: PluginContext[] = [];
    const registry = builtinRegistry().register(
      definePlugin({
        name: "local-with-context",
        kind: "runtime",
        optionsSchema: LocalRuntimeOptionsSchema,
        create: (options, context) => {
          contexts.push(context);
          return localRuntimePlugin.create(options, context);
        },
      }),
    );
    const { logger, lines } = capturingLogger();
    const t = await startTestServer({
      runtime: { plugin: "local-with-context" },
      secrets: { enabled: true, options: { providers: [{ type: "env", prefix: PREFIX }] } },
      storage: { path: join(dir.path, "host.db") },
      registry,
      logger,
    });
    servers.push(t);
    const context = contexts[0]!;

    // Session A gets API_TOKEN = first; its sandbox has the value, the host shows it redacted.
    const a = await readySession(t, { id: "a" });
    const echoed = await runCommand(t, a, "echo token=$API_TOKEN");
    expect(echoed.observation.content).toContain("token=[redacted]");
    expect(JSON.stringify(echoed)).not.toContain(first);
    // The runtime plugin's context carries the live redactor: it knows what was resolved for A.
    expect(context.redactor.redact(`x ${first} y`)).toBe("x [redacted] y");
    expect((await t.request("DELETE", `/v1/sessions/${a}`)).body.status).toBe("closed");

    // The value rotates: session B gets API_TOKEN = second and never resolves `first`.
    const second = newSecret();
    process.env[VARIABLE] = second;
    const created = await t.request("POST", "/v1/sessions", { body: { id: "b", labels: { note: first } } });
    expect(created.status).toBe(201);
    expect(created.body.labels.note).toBe("[redacted]");
    const ready = await t.request("GET", "/v1/sessions/b?waitMs=30000");
    expect(ready.body.status).toBe("ready");
    const typed = await runCommand(t, "b", `echo old=${first} new=$API_TOKEN`);
    expect(typed.status).toBe("completed");
    expect(typed.action.args.command).toBe("echo old=[redacted] new=$API_TOKEN");
    expect(typed.observation.content).toContain("old=[redacted] new=[redacted]");

    // Log lines of the host and of the plugins, written after A closed: neither value gets through.
    t.host.logger.warn(`probe ${first}`, { value: first, nested: [second] });
    context.logger.info(`plugin probe ${first} ${second}`);
    expect(lines.some((l) => l.includes("probe [redacted]"))).toBe(true);
    expect(lines.some((l) => l.includes("plugin probe [redacted] [redacted]"))).toBe(true);

    expect((await t.request("DELETE", "/v1/sessions/b")).body.status).toBe("closed");
    // The stored event log of B, replayed over SSE (a closed session's stream replays, then ends).
    const res = await fetch(`${t.url}/v1/sessions/b/events?after=0`, {
      headers: { authorization: `Bearer ${t.token}` },
    });
    const events = await res.text();
    expect(events).toContain('"status":"closed"');
    expect(events).toContain(RuntimeStatus.READY);
    const stored: Json[] = [
      events,
      (await t.request("GET", "/v1/sessions/b")).body,
      (await t.request("GET", "/v1/sessions/b/tasks")).body,
    ];
    for (const secret of [first, second]) {
      expect(JSON.stringify(stored)).not.toContain(secret);
      expect(lines.join("\n")).not.toContain(secret);
      for (const file of [t.host.store.path, `${t.host.store.path}-wal`])
        expect(readFileSync(file).includes(Buffer.from(secret))).toBe(false);
    }
  });

  test("composePlugins hands the live redactor to every plugin's logger (demo and run log through it)", async () => {
    const secret = newSecret();
    const { logger, lines } = capturingLogger();
    const plugins = await composePlugins(
      parseHostConfig({
        runtime: { options: { isolation: "none" } },
        cost: { enabled: false },
        secrets: {
          options: { providers: [{ type: "env", prefix: "", names: ["TOKEN"], source: { TOKEN: secret } }] },
        },
      }),
      { logger },
    );
    try {
      expect(plugins.redactor).toBeDefined();
      expect(plugins.redactor?.isEmpty).toBe(true);
      await plugins.secrets!.resolve({ sessionId: "s1" });
      plugins.logger.error(`failed with ${secret}`, { token: secret });
      expect(lines.at(-1)).toBe('error failed with [redacted] {"token":"[redacted]"}');
      expect(lines.join("\n")).not.toContain(secret);
    } finally {
      await plugins.close();
    }
  });
});
