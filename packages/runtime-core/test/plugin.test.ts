import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  definePlugin,
  isRuntimeError,
  noopRedactor,
  type PluginContext,
  type PluginInstance,
  type PluginOptions,
  PluginRegistry,
  silentLogger,
} from "../src/index.js";

const context: PluginContext = { logger: silentLogger, redactor: noopRedactor };

const echo = definePlugin({
  name: "echo",
  kind: "runtime",
  optionsSchema: z.object({ greeting: z.string().default("hi"), repeat: z.number().int().min(1) }),
  create: (options) => ({ say: () => options.greeting.repeat(options.repeat) }),
});

describe("plugins", () => {
  it("infers options and instance types", () => {
    expectTypeOf(echo.kind).toEqualTypeOf<"runtime">();
    expectTypeOf<PluginOptions<typeof echo>>().toEqualTypeOf<{
      greeting?: string | undefined;
      repeat: number;
    }>();
    expectTypeOf<PluginInstance<typeof echo>>().toEqualTypeOf<{ say: () => string }>();
    definePlugin({
      name: "typed",
      kind: "cost",
      optionsSchema: z.object({ limitUsd: z.number() }),
      create: (options) => {
        expectTypeOf(options).toEqualTypeOf<{ limitUsd: number }>();
        return options.limitUsd;
      },
    });
  });

  it("validates options once, reporting every issue as path: message", () => {
    const registry = new PluginRegistry().register(echo);
    const instance = registry.create("runtime", "echo", { repeat: 2 }, context) as { say(): string };
    expect(instance.say()).toBe("hihi");
    try {
      registry.create("runtime", "echo", { greeting: 5, repeat: 0 }, context);
      expect.unreachable();
    } catch (err) {
      expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
      expect((err as Error).message).toContain('options for runtime plugin "echo"');
      expect((err as Error).message).toMatch(/greeting: .*\n.*repeat: /s);
    }
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

  it("rejects invalid plugin names", () => {
    expect(() =>
      definePlugin({ name: "has space", kind: "runtime", optionsSchema: z.object({}), create: () => 1 }),
    ).toThrow(/Invalid plugin name/);
  });
});
