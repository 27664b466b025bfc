import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  type CostPlugin,
  createPluginInstance,
  definePlugin,
  isPlugin,
  isRuntimeError,
  noopRedactor,
  type PluginContext,
  type PluginInstance,
  type PluginOptions,
  PluginRegistry,
  type RuntimeProvider,
  renamedOptionIssues,
  type SecretsPlugin,
  silentLogger,
} from "../src/index.js";
import { NO_CAPABILITIES } from "../src/testing.js";

const context: PluginContext = { logger: silentLogger, redactor: noopRedactor };

/** A provider that only records its greeting (its create is never called in these tests). */
class EchoProvider implements RuntimeProvider {
  readonly backend = "echo";
  readonly capabilities = NO_CAPABILITIES;
  constructor(readonly greeting: string) {}
  say(): string {
    return this.greeting;
  }
  async create(): Promise<never> {
    throw new Error("not in this test");
  }
  async attach(): Promise<never> {
    throw new Error("not in this test");
  }
  async close(): Promise<void> {}
}

const echo = definePlugin({
  name: "echo",
  kind: "runtime",
  optionsSchema: z
    .object({
      greeting: z.string().default("hi"),
      repeat: z.number().int().min(1),
      dir: z.string().optional(),
    })
    .strict(),
  renamedOptions: { salutation: "greeting", times: "repeat" },
  validate: (o) => (o.dir === "/missing" ? ["dir: /missing does not exist; create it first"] : []),
  create: (options) => new EchoProvider(options.greeting.repeat(options.repeat)),
});

describe("plugins", () => {
  it("infers options and the kind's instance type", () => {
    expectTypeOf(echo.kind).toEqualTypeOf<"runtime">();
    expectTypeOf<PluginOptions<typeof echo>>().toEqualTypeOf<{
      greeting?: string | undefined;
      repeat: number;
      dir?: string | undefined;
    }>();
    expectTypeOf<PluginInstance<typeof echo>>().toEqualTypeOf<EchoProvider>();
    const registry = new PluginRegistry();
    expectTypeOf(() => registry.create("runtime", "x", {}, context)).returns.toEqualTypeOf<RuntimeProvider>();
    expectTypeOf(() => registry.create("secrets", "x", {}, context)).returns.toEqualTypeOf<SecretsPlugin>();
    expectTypeOf(() => registry.create("cost", "x", {}, context)).returns.toEqualTypeOf<CostPlugin>();
    expectTypeOf(() => createPluginInstance(echo, {}, context)).returns.toEqualTypeOf<EchoProvider>();
    // A runtime plugin whose factory does not create a RuntimeProvider does not compile.
    definePlugin({
      name: "wrong",
      kind: "runtime",
      optionsSchema: z.object({}),
      // @ts-expect-error a number is not a RuntimeProvider
      create: () => 1,
    });
  });

  it("runs renamed -> parse -> validate, reporting every issue as path: message", () => {
    const registry = new PluginRegistry().register(echo);
    const instance = registry.create("runtime", "echo", { repeat: 2 }, context) as EchoProvider;
    expect(instance.say()).toBe("hihi");
    const message = (options: unknown) => {
      try {
        registry.create("runtime", "echo", options, context);
      } catch (err) {
        expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
        return (err as Error).message;
      }
      return expect.unreachable();
    };
    expect(message({ greeting: 5, repeat: 0 })).toMatch(
      /options for runtime plugin "echo".*\n.*greeting: .*\n.*repeat: /s,
    );
    expect(message({ salutation: "yo", times: 2 })).toBe(
      'Invalid options for runtime plugin "echo":\n  salutation: this option is now "greeting"\n  times: this option is now "repeat"',
    );
    expect(message({ repeat: 1, dir: "/missing" })).toContain(
      "dir: /missing does not exist; create it first",
    );
  });

  it("a package factory and the registry accept and refuse the same options", () => {
    const registry = new PluginRegistry().register(echo);
    for (const options of [
      { repeat: 1 },
      { salutation: "x", repeat: 1 },
      { repeat: 1, dir: "/missing" },
      {},
    ]) {
      const viaRegistry = capture(() => registry.create("runtime", "echo", options, context));
      const viaFactory = capture(() => createPluginInstance(echo, options, context));
      expect(viaFactory).toEqual(viaRegistry);
    }
  });

  it("refuses an instance without its kind's methods", () => {
    const bad = definePlugin({
      name: "bad",
      kind: "cost",
      optionsSchema: z.object({}),
      create: () => ({ reserve: () => {} }) as unknown as CostPlugin,
    });
    expect(() => createPluginInstance(bad, {}, context)).toThrow(
      /The cost plugin "bad" created an instance without activate, heartbeat, settle/,
    );
  });

  it("refuses duplicates and lists known names on a miss", () => {
    const registry = new PluginRegistry().register(echo);
    expect(() => registry.register(echo)).toThrow(/already registered/);
    try {
      registry.get("runtime", "modal");
      expect.unreachable();
    } catch (err) {
      expect(isRuntimeError(err, "NOT_FOUND")).toBe(true);
      expect((err as Error).message).toContain("Registered runtime plugins: echo.");
    }
    expect(() => registry.get("cost", "x")).toThrow(/Registered cost plugins: \(none\)/);
    expect(registry.names("runtime")).toEqual(["echo"]);
  });

  it("rejects invalid plugin names and kinds", () => {
    expect(() =>
      definePlugin({
        name: "has space",
        kind: "runtime",
        optionsSchema: z.object({}),
        create: () => new EchoProvider(""),
      }),
    ).toThrow(/Invalid plugin name/);
    expect(() =>
      definePlugin({
        name: "k",
        kind: "storage" as "runtime",
        optionsSchema: z.object({}),
        create: () => new EchoProvider(""),
      }),
    ).toThrow(/Invalid plugin kind "storage".*runtime, secrets, cost/);
  });

  it("recognises plugins among a module's exports", () => {
    expect(isPlugin(echo)).toBe(true);
    expect(isPlugin({ name: "x", kind: "runtime", create: () => 1 })).toBe(false);
    expect(isPlugin({ ...echo, kind: "storage" })).toBe(false);
    expect(isPlugin(null)).toBe(false);
  });

  it("names renamed options one way", () => {
    expect(renamedOptionIssues({ workspace: "/w", ok: 1 }, { workspace: "workspaceDir" })).toEqual([
      'workspace: this option is now "workspaceDir"',
    ]);
    expect(renamedOptionIssues(["workspace"], { workspace: "x" })).toEqual([]);
    expect(renamedOptionIssues(null, { workspace: "x" })).toEqual([]);
  });
});

function capture(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
}
