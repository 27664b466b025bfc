import { createHash, randomBytes } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type ModalEmulator, startModalEmulator } from "@agent-runtime/modal-emulator";
import { silentLogger } from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseHostConfig } from "../src/config.js";
import { AgentHost } from "../src/host.js";
import type { HostConfig } from "../src/options.js";
import { type RunningServer, startServer } from "../src/server.js";
import { emulatorRuntimeOptions, type Json, runBlocking } from "./helpers.js";

// A secrets plugin that is not ours, in a module of its own that the host loads by path from its config alone,
// supplies a Modal named secret as a runtime-core SecretReference; the modal runtime attaches it, and the value
// reaches the sandbox through Modal (here modal-emulator, through the real modal SDK), never through the host.

/** What the third-party plugin's author ships: a plugin made with runtime-core's definePlugin, and zod. */
const PLUGIN_SOURCE = `
import { definePlugin } from "@agent-runtime/runtime-core";
import { z } from "zod";

/** A vault that keeps its values in Modal: sandboxes get them by name; the vault knows them to redact them. */
export const acmeVaultSecrets = definePlugin({
  name: "acme-vault",
  kind: "secrets",
  optionsSchema: z.strictObject({
    modalSecret: z.string().min(1),
    requiredKeys: z.array(z.string()).default([]),
    knownValues: z.array(z.string().min(8)).default([]),
  }),
  renamedOptions: { secretName: "modalSecret" },
  validate: (o) => (o.requiredKeys.length === 0 ? ["requiredKeys: name at least one key the sandbox needs"] : []),
  create(options) {
    const redact = (text) =>
      options.knownValues.reduce((t, value) => t.split(value).join("<acme:redacted>"), text);
    const redactor = {
      isEmpty: options.knownValues.length === 0,
      redact,
      redactDeep: (value) => (value === undefined ? value : JSON.parse(redact(JSON.stringify(value)))),
    };
    return {
      redactor,
      async resolve() {
        return {
          env: {},
          names: [],
          redactor,
          references: [{ backend: "modal", name: options.modalSecret, requiredKeys: options.requiredKeys }],
        };
      },
    };
  },
});
`;

const VALUE = `acme-team-token-${randomBytes(12).toString("hex")}`;
const TOKEN = randomBytes(24).toString("hex");

let emulator: ModalEmulator;
let dir: string;
let pluginPath: string;
let apps = 0;

/** Links a package of this workspace into the temporary project, as an install of its peer dependencies would. */
function linkPackage(name: string): void {
  const require = createRequire(import.meta.url);
  const target = dirname(realpathSync(require.resolve(`${name}/package.json`)));
  const link = join(dir, "node_modules", name);
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(target, link, "dir");
}

beforeAll(async () => {
  emulator = await startModalEmulator({ strict: true });
  // The named secret exists in "Modal" before any sandbox asks for it.
  emulator.namedSecrets.set("acme-team", { TEAM_TOKEN: VALUE });
  dir = mkdtempSync(join(tmpdir(), "third-party-secrets-"));
  // The plugin's own project: its module, with runtime-core and zod resolvable from it (its peer dependencies).
  linkPackage("@agent-runtime/runtime-core");
  linkPackage("zod");
  pluginPath = join(dir, "acme-vault-secrets.mjs");
  writeFileSync(pluginPath, PLUGIN_SOURCE);
});

afterAll(async () => {
  await emulator?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Host {
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** The host's state directory (database, WAL, token). */
  stateDir: string;
  /** What an SSE route sends within `ms` (the stream stays open while the session lives). */
  stream(path: string, ms: number): Promise<string>;
  stop(): Promise<void>;
}

/** A host on 127.0.0.1 from `secrets` config alone, on the modal runtime against the emulator. */
async function startHost(secrets: HostConfig["secrets"]): Promise<Host> {
  const state = mkdtempSync(join(tmpdir(), "third-party-secrets-state-"));
  let host: AgentHost | undefined;
  let server: RunningServer | undefined;
  try {
    const config = parseHostConfig({
      runtime: {
        plugin: "modal",
        options: emulatorRuntimeOptions(emulator, {
          image: "node:24-bookworm-slim",
          appName: `third-party-${process.pid}-${apps++}`,
          cpuCores: 0.25,
          memoryMiB: 512,
        }),
      },
      secrets,
      cost: { enabled: false },
      server: { host: "127.0.0.1", port: 0 },
      storage: { stateDir: state },
    });
    host = await AgentHost.open(config, { logger: silentLogger, env: {} });
    server = await startServer(host, { token: TOKEN });
  } catch (err) {
    await host?.close({ closeSessions: true });
    rmSync(state, { recursive: true, force: true });
    throw err;
  }
  const url = server.url;
  return {
    stateDir: state,
    async request(method, path, body) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as Json) : undefined };
    },
    async stream(path, ms) {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), ms);
      let text = "";
      try {
        const res = await fetch(`${url}${path}`, {
          headers: { authorization: `Bearer ${TOKEN}` },
          signal: abort.signal,
        });
        const decoder = new TextDecoder();
        for await (const chunk of res.body as AsyncIterable<Uint8Array>)
          text += decoder.decode(chunk, { stream: true });
      } catch (err) {
        if (!abort.signal.aborted) throw err;
      } finally {
        clearTimeout(timer);
      }
      return text;
    },
    async stop() {
      await server?.close();
      await host?.close({ closeSessions: true });
      rmSync(state, { recursive: true, force: true });
    },
  };
}

describe("a third-party secrets plugin, loaded by module path from config alone", () => {
  test("its Modal named secret reaches the modal sandbox by reference; the host redacts it with the plugin's redactor", async () => {
    const host = await startHost({
      plugin: pluginPath,
      options: { modalSecret: "acme-team", requiredKeys: ["TEAM_TOKEN"], knownValues: [VALUE] },
    });
    try {
      const created = await host.request("POST", "/v1/sessions", {});
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const id = created.body.id as string;
      const ready = await host.request("GET", `/v1/sessions/${id}?waitMs=60000`);
      expect(ready.body.status, JSON.stringify(ready.body)).toBe("ready");

      // The value is in the sandbox: its hash matches, without the value crossing the API.
      const hashed = await runBlocking(host, id, "printenv TEAM_TOKEN | sha256sum");
      const expected = createHash("sha256").update(`${VALUE}\n`).digest("hex");
      expect(JSON.stringify(hashed)).toContain(expected);

      // Printed, it comes back redacted by the plugin's own redactor, in the task and in the session's events.
      const printed = await runBlocking(host, id, "printenv TEAM_TOKEN; printenv TEAM_TOKEN | wc -c");
      const printedText = JSON.stringify(printed);
      expect(printed.observation.content).toBe(`<acme:redacted>\n${VALUE.length + 1}`);
      expect(printedText).not.toContain(VALUE);
      const tasks = await host.request("GET", `/v1/sessions/${id}/tasks`);
      expect(JSON.stringify(tasks.body)).toContain("<acme:redacted>");
      expect(JSON.stringify(tasks.body)).not.toContain(VALUE);
      const events = await host.stream(`/v1/sessions/${id}/events?after=0`, 1500);
      expect(events).toContain("<acme:redacted>");
      expect(events).not.toContain(VALUE);

      // The sandbox got the secret from Modal by name, not as a value from the host.
      const sandboxes = emulator
        .listSandboxes()
        .filter((s) => s.running && s.appName.startsWith("third-party-"));
      expect(sandboxes).toHaveLength(1);
      expect(JSON.stringify(sandboxes)).not.toContain(VALUE);

      expect((await host.request("DELETE", `/v1/sessions/${id}`)).status).toBeLessThan(300);
      // Nothing the host stored (database, its WAL) holds the value.
      for (const file of readdirSync(host.stateDir, { recursive: true, withFileTypes: true })) {
        if (!file.isFile()) continue;
        expect(readFileSync(join(file.parentPath, file.name)).includes(VALUE), file.name).toBe(false);
      }
    } finally {
      await host.stop();
    }
  }, 120_000);

  test("a reference to a Modal secret that does not exist fails the session, naming the secret", async () => {
    const host = await startHost({
      plugin: pluginPath,
      options: { modalSecret: "acme-missing", requiredKeys: ["TEAM_TOKEN"] },
    });
    try {
      const created = await host.request("POST", "/v1/sessions", {});
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const got = await host.request("GET", `/v1/sessions/${created.body.id}?waitMs=60000`);
      expect(got.body.status).toBe("error");
      expect(JSON.stringify(got.body.error)).toContain(
        'Looking up the Modal Secret \\"acme-missing\\" failed',
      );
    } finally {
      await host.stop();
    }
  }, 120_000);

  test("its options go through its own pipeline (renamed, schema, validate), errors under secrets.options", async () => {
    const renamed = await startHost({ plugin: pluginPath, options: { secretName: "acme-team" } }).catch(
      (e: unknown) => e,
    );
    expect((renamed as Error).message).toContain(
      'secrets.options.secretName: this option is now "modalSecret"',
    );
    const invalid = await startHost({ plugin: pluginPath, options: { modalSecret: "acme-team" } }).catch(
      (e: unknown) => e,
    );
    expect((invalid as Error).message).toContain(
      "secrets.options.requiredKeys: name at least one key the sandbox needs",
    );
  });
});
