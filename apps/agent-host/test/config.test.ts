import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  definePlugin,
  isRuntimeError,
  PluginRegistry,
  type RuntimeProvider,
  silentLogger,
} from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, test } from "vitest";
import { z } from "zod";
import { composePlugins } from "../src/compose.js";
import { loadHostConfig, parseHostConfig } from "../src/config.js";
import { builtinRegistry, ensurePlugin } from "../src/plugins.js";
import { tempDir } from "./helpers.js";

const dir = tempDir();
afterAll(() => dir.cleanup());

function thrown(fn: () => unknown): { code: string; message: string; issues: string[] } {
  try {
    fn();
  } catch (err) {
    if (!isRuntimeError(err)) throw err;
    return {
      code: err.code,
      message: err.message,
      issues: (err.details?.issues as string[] | undefined) ?? [],
    };
  }
  throw new Error("expected an error");
}

describe("host config", () => {
  test("{} gives the documented defaults", () => {
    const c = parseHostConfig({});
    expect(c.runtime).toEqual({ plugin: "local", options: {} });
    expect(c.server).toMatchObject({
      host: "127.0.0.1",
      port: 8787,
      tokenEnv: "AGENT_HOST_TOKEN",
      maxWaitMs: 60_000,
    });
    // The database lives in the private state directory unless storage.path says otherwise.
    expect(c.storage).toEqual({});
    expect(c.server.auth).toBe(true);
    expect(c.cost).toEqual({ enabled: true, plugin: "cost-guard", options: {} });
    expect(c.secrets.enabled).toBe(true);
    expect(c.sessions).toMatchObject({ maxSessions: 256, keepAliveOnShutdown: true });
  });

  test("every problem is reported with its path", () => {
    const e = thrown(() =>
      parseHostConfig({ server: { port: 70000, extra: 1 }, runtime: { plugin: "" } }, "host.yaml"),
    );
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain("Invalid host.yaml");
    expect(e.issues.some((i) => i.startsWith("server.port:"))).toBe(true);
    expect(e.issues.some((i) => i.startsWith("server:") && i.includes("extra"))).toBe(true);
    expect(e.issues.some((i) => i.startsWith("runtime.plugin:"))).toBe(true);
  });

  test("a misplaced key names where it belongs", () => {
    const e = thrown(() => parseHostConfig({ port: 1, budgets: [], token: "x" }));
    expect(e.issues).toEqual([
      'port: this option is now "server.port"',
      'budgets: this option is now "cost.options.budgets"',
      'token: this option is now "server.tokenEnv"',
    ]);
    expect(e.message).toContain('Invalid host config:\n  port: this option is now "server.port"');
  });

  test("YAML files are read, flags override them, syntax errors give the line", () => {
    const file = join(dir.path, "host.yaml");
    writeFileSync(file, "runtime:\n  plugin: local\n  options: { isolation: none }\nserver:\n  port: 9000\n");
    const c = loadHostConfig(file, { port: 9100, db: "/tmp/x.db" });
    expect(c.server.port).toBe(9100);
    expect(c.storage.path).toBe("/tmp/x.db");
    expect(c.runtime.options).toEqual({ isolation: "none" });
    const flags = loadHostConfig(file, { stateDir: "/srv/agent-host", auth: false });
    expect(flags.storage).toEqual({ stateDir: "/srv/agent-host" });
    expect(flags.server).toMatchObject({ auth: false, port: 9000 });
    expect(loadHostConfig(file, { runtime: "modal" }).runtime).toEqual({ plugin: "modal", options: {} });

    const bad = join(dir.path, "bad.yaml");
    writeFileSync(bad, "server:\n  port: [1,\n");
    const e = thrown(() => loadHostConfig(bad));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toMatch(/bad\.yaml.*line \d+/);

    const json = join(dir.path, "host.json");
    writeFileSync(json, '{"server": {"port": "x"}}');
    expect(thrown(() => loadHostConfig(json)).issues[0]).toMatch(/^server\.port:/);
    expect(thrown(() => loadHostConfig(join(dir.path, "missing.yaml"))).code).toBe("NOT_FOUND");
  });

  test("plugin options are validated by the plugin, with the config path in front", async () => {
    const config = parseHostConfig({
      runtime: { options: { isolation: "maybe" } },
      cost: { enabled: false },
      secrets: { enabled: false },
    });
    const err = await composePlugins(config, { logger: silentLogger }).catch((e: unknown) => e);
    expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
    expect((err as Error).message).toContain("runtime.options.isolation");
    const costErr = await composePlugins(
      parseHostConfig({ cost: { options: { budgets: [{ limitUsd: -1 }] } } }),
    ).catch((e: unknown) => e);
    expect((costErr as Error).message).toContain("cost.options.budgets[0].limitUsd");
  });
});

describe("plugin loading", () => {
  const fakePlugin = (name: string) =>
    definePlugin({
      name,
      kind: "runtime",
      optionsSchema: z.object({}),
      // Never created in these tests: only registration and lookup are exercised.
      create: () => ({}) as RuntimeProvider,
    });

  test("built-ins are there; a module's single runtime plugin is registered and used", async () => {
    const registry = builtinRegistry();
    expect(registry.names("runtime")).toEqual(["docker", "local"]);
    expect(await ensurePlugin(registry, "runtime", "local")).toBe("local");
    expect(await ensurePlugin(registry, "runtime", "docker")).toBe("docker");
    const name = await ensurePlugin(registry, "runtime", "acme-runtime", async (spec) => {
      expect(spec).toBe("acme-runtime");
      return { acmePlugin: fakePlugin("acme"), helper: 1 };
    });
    expect(name).toBe("acme");
    expect(registry.has("runtime", "acme")).toBe(true);
  });

  test("modal loads @agent-runtime/runtime-modal; no plugin there is UNSUPPORTED with a clear message", async () => {
    const registry = new PluginRegistry();
    const err = await ensurePlugin(registry, "runtime", "modal", async (spec) => {
      expect(spec).toBe("@agent-runtime/runtime-modal");
      return { PACKAGE_NAME: "@agent-runtime/runtime-modal" };
    }).catch((e: unknown) => e);
    expect(isRuntimeError(err, "UNSUPPORTED")).toBe(true);
    expect((err as Error).message).toContain("exports no runtime plugin");
  });

  test("a module that cannot be loaded is UNSUPPORTED and lists the built-ins", async () => {
    const err = await ensurePlugin(builtinRegistry(), "runtime", "no-such-module-xyz").catch(
      (e: unknown) => e,
    );
    expect(isRuntimeError(err, "UNSUPPORTED")).toBe(true);
    expect((err as Error).message).toMatch(/no-such-module-xyz.*Built-in runtime plugins: docker, local/s);
  });

  test("several plugins of the kind in one module: name one", async () => {
    const err = await ensurePlugin(new PluginRegistry(), "runtime", "multi", async () => ({
      a: fakePlugin("a"),
      b: fakePlugin("b"),
    })).catch((e: unknown) => e);
    expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
    expect((err as Error).message).toContain("a, b");
  });
});
