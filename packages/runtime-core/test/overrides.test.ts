import { describe, expect, expectTypeOf, it } from "vitest";
import {
  type CreateRuntimeInput,
  isRuntimeError,
  parseCreateRuntimeInput,
  type RuntimeError,
  type RuntimeProvider,
  SANDBOX_OVERRIDE_FIELDS,
  SessionOverridesSchema,
} from "../src/index.js";

function errorOf(fn: () => unknown): RuntimeError {
  try {
    fn();
  } catch (err) {
    if (isRuntimeError(err)) return err;
    throw err;
  }
  throw new Error("expected a RuntimeError");
}

const all = {
  backend: "test",
  supported: SANDBOX_OVERRIDE_FIELDS,
};

describe("parseCreateRuntimeInput", () => {
  it("accepts every field and keeps what was given", () => {
    const input: CreateRuntimeInput = {
      sessionId: "s1",
      image: "python:3.12-slim",
      gpu: "A100-80GB:2",
      cpuCores: 0.5,
      memoryMiB: 4096,
      timeoutMs: 600_000,
      idleTimeoutMs: 60_000,
      env: { MODE: "ci" },
      labels: { team: "ml" },
      userId: "alice@example.com",
    };
    expect(parseCreateRuntimeInput(input, all)).toEqual(input);
    expect(parseCreateRuntimeInput({ sessionId: "s2" }, all)).toEqual({ sessionId: "s2" });
  });

  it("reports every issue at once as path: message", () => {
    const err = errorOf(() =>
      parseCreateRuntimeInput(
        {
          sessionId: "s1",
          cpuCores: -1,
          memoryMiB: 1.5,
          gpu: "two H100s",
          env: { "1BAD": "x" },
          timeoutMs: 5000,
          idleTimeoutMs: 6000,
          bogus: true,
        },
        all,
      ),
    );
    expect(err.code).toBe("INVALID_ARGUMENT");
    const issues = err.details?.issues as string[];
    expect(issues.some((i) => i.startsWith("cpuCores:"))).toBe(true);
    expect(issues.some((i) => i.startsWith("memoryMiB:"))).toBe(true);
    expect(issues.some((i) => i.startsWith("gpu:"))).toBe(true);
    expect(issues.some((i) => i.startsWith("env.1BAD:"))).toBe(true);
    expect(issues.some((i) => i.includes("bogus"))).toBe(true);
  });

  it("names the field to use for a guessed name", () => {
    const err = errorOf(() => parseCreateRuntimeInput({ sessionId: "s1", cpu: 2, memory: 512 }, all));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toContain('cpu: this option is now "cpuCores"');
    expect(err.message).toContain('memory: this option is now "memoryMiB"');
  });

  it("refuses with UNSUPPORTED, naming each field, what the backend cannot set; labels and userId always pass", () => {
    const backend = { backend: "tiny", supported: ["env"] as const, hints: { gpu: "use modal" } };
    const err = errorOf(() =>
      parseCreateRuntimeInput(
        { sessionId: "s1", gpu: "T4", image: "x:1", labels: { a: "b" }, userId: "u" },
        backend,
      ),
    );
    expect(err.code).toBe("UNSUPPORTED");
    expect(err.details?.fields).toEqual(["image", "gpu"]);
    expect(err.message).toContain("gpu: the tiny backend cannot set this per session; use modal");
    expect(err.message).toContain("image: the tiny backend cannot set this per session");
    expect(
      parseCreateRuntimeInput({ sessionId: "s1", labels: { a: "b" }, userId: "u", env: { A: "1" } }, backend),
    ).toEqual({ sessionId: "s1", labels: { a: "b" }, userId: "u", env: { A: "1" } });
  });

  it("types: create takes the overrides; the schema's input is SessionOverrides", () => {
    expectTypeOf<Parameters<RuntimeProvider["create"]>[0]>().toEqualTypeOf<CreateRuntimeInput>();
    expectTypeOf<CreateRuntimeInput["gpu"]>().toEqualTypeOf<string | undefined>();
    expect(SessionOverridesSchema.safeParse({ idleTimeoutMs: 2000, timeoutMs: 1000 }).success).toBe(false);
  });
});
