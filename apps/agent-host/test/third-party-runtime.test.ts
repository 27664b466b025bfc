import { symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { isRuntimeError } from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, test } from "vitest";
import { readySession, runCommand, startTestServer, type TestServer, tempDir } from "./helpers.js";

// A third-party runtime plugin as its author would publish it: a module of its own that imports runtime-core
// (and what it builds on), found by the host through `runtime.plugin` alone. Its dependencies resolve through
// a node_modules next to it, as when the module is installed beside the host.
const dir = tempDir("agent-host-third-party-");
symlinkSync(join(import.meta.dirname, "..", "node_modules"), join(dir.path, "node_modules"), "dir");
const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  dir.cleanup();
});

/** An "acme" backend: runtime-local's sandboxes under another backend name, with a greeting in their env. */
const ACME_PLUGIN = `
import { definePlugin } from "@agent-runtime/runtime-core";
import { localRuntime } from "@agent-runtime/runtime-local";
import { z } from "zod";

export const acmeRuntimePlugin = definePlugin({
  name: "acme",
  kind: "runtime",
  optionsSchema: z.strictObject({
    greeting: z.string().min(1),
    isolation: z.enum(["auto", "none", "bubblewrap"]).default("none"),
    startupTimeoutMs: z.number().int().positive().default(20000),
  }),
  create(options, context) {
    const local = localRuntime(
      { isolation: options.isolation, startupTimeoutMs: options.startupTimeoutMs, env: { ACME_GREETING: options.greeting } },
      context,
    );
    return {
      backend: "acme",
      capabilities: local.capabilities,
      supportedOverrides: local.supportedOverrides,
      create: (input) => local.create(input),
      attach: (handle) => local.attach(handle),
      close: () => local.close(),
    };
  },
});

export const version = "1.0.0";
`;

/** A plugin built against another contract: its instance has no `attach`. */
const NO_ATTACH_PLUGIN = `
import { definePlugin } from "@agent-runtime/runtime-core";
import { z } from "zod";

export default definePlugin({
  name: "half-done",
  kind: "runtime",
  optionsSchema: z.object({}).passthrough(),
  create: () => ({
    backend: "half-done",
    capabilities: {},
    create: async () => { throw new Error("never called"); },
    close: async () => {},
  }),
});
`;

function writeModule(name: string, text: string): string {
  const path = join(dir.path, name);
  writeFileSync(path, text);
  return path;
}

describe("a third-party runtime plugin through config alone", () => {
  test("runtime.plugin names its module: the host registers it, passes it its options and runs actions on it over the API", async () => {
    const module = writeModule("acme-runtime.mjs", ACME_PLUGIN);
    const t = await startTestServer({
      runtime: { plugin: module, options: { greeting: "hello from acme" } },
    });
    servers.push(t);
    expect(t.host.plugins.runtimePlugin).toBe("acme");
    const health = await t.request("GET", "/health");
    expect(health.body).toMatchObject({ ok: true, backend: "acme" });

    const id = await readySession(t, { id: "acme-1", labels: { via: "plugin" } });
    const session = await t.request("GET", `/v1/sessions/${id}`);
    expect(session.body).toMatchObject({ id, backend: "acme", status: "ready", labels: { via: "plugin" } });
    const done = await runCommand(t, id, "echo greeting=$ACME_GREETING; echo $((6 * 7))");
    expect(done.status).toBe("completed");
    expect(done.observation.content).toContain("greeting=hello from acme");
    expect(done.observation.content).toContain("42");
    expect(done.observation.extras.metadata.exit_code).toBe(0);

    // The token is required on its routes like on any other backend's.
    const anonymous = await t.request("GET", `/v1/sessions/${id}`, { token: null });
    expect(anonymous.status).toBe(401);
    expect((await t.request("DELETE", `/v1/sessions/${id}`)).body.status).toBe("closed");
  });

  test("its options are checked by its own schema, issues rooted at runtime.options", async () => {
    const module = writeModule("acme-runtime-2.mjs", ACME_PLUGIN);
    const err = await startTestServer({ runtime: { plugin: module, options: { greting: "typo" } } }).catch(
      (e: unknown) => e,
    );
    expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
    const issues = (err as { details: { issues: string[] } }).details.issues;
    expect(issues.some((i) => i.startsWith("runtime.options.greeting:"))).toBe(true);
    expect(issues).toContain('runtime.options: Unrecognized key: "greting"');
  });

  test("a plugin whose instance lacks attach fails at startup with INTERNAL naming the plugin", async () => {
    // Named by a path relative to the working directory this time.
    const module = relative(process.cwd(), writeModule("half-done-runtime.mjs", NO_ATTACH_PLUGIN));
    expect(module).toMatch(/^\.\.\//);
    const err = await startTestServer({ runtime: { plugin: module } }).catch((e: unknown) => e);
    expect(isRuntimeError(err, "INTERNAL")).toBe(true);
    expect((err as Error).message).toBe(
      'The runtime plugin "half-done" created an instance without attach: a runtime plugin must create an object with create, attach, close.',
    );
  });
});
