import { isRuntimeError, parseObservation } from "@agent-runtime/runtime-core";
import { describe, expect, test } from "vitest";
import { parseTestOutput } from "../src/cli/demo.js";
import { Progress } from "../src/cli/progress.js";
import { checkExpectations, parseScript, stepAction } from "../src/cli/script.js";

const runObs = (content: string, exit: number) =>
  parseObservation({ observation: "run", content, extras: { command: "x", metadata: { exit_code: exit } } });

describe("scripts", () => {
  test("steps become actions; relative paths resolve in the workspace", () => {
    const s = parseScript({
      steps: [
        { run: "ls" },
        { write: { path: "a.txt", content: "x" } },
        { edit: { path: "/abs/b.js", oldStr: "1", newStr: "2" } },
        { action: { action: "read", args: { path: "/etc/hostname" } } },
      ],
    });
    expect(stepAction(s.steps[0]!, "/workspace")).toMatchObject({
      action: "run",
      args: { command: "ls", blocking: true },
      timeout: 120,
    });
    expect(stepAction(s.steps[1]!, "/workspace")).toMatchObject({
      action: "write",
      args: { path: "/workspace/a.txt" },
    });
    expect(stepAction(s.steps[2]!, "/workspace")).toMatchObject({
      action: "edit",
      args: { path: "/abs/b.js", command: "str_replace", old_str: "1" },
    });
    expect(stepAction(s.steps[3]!, "/workspace")).toMatchObject({
      action: "read",
      args: { path: "/etc/hostname" },
    });
  });

  test("expectations: exit code 0 by default for run steps, contains, notContains, matches", () => {
    const s = parseScript({
      steps: [
        { run: "a" },
        { run: "b", expect: { exitCode: "any", contains: ["x", "y"], notContains: "z", matches: "^x\\d$" } },
      ],
    });
    expect(checkExpectations(s.steps[0]!, runObs("out", 0))).toEqual([]);
    expect(checkExpectations(s.steps[0]!, runObs("out", 2))).toEqual(["expected exit code 0, got 2"]);
    expect(checkExpectations(s.steps[1]!, runObs("x1\ny", 9))).toEqual([]);
    expect(checkExpectations(s.steps[1]!, runObs("x\nz", 0))).toEqual([
      'output does not contain "y"',
      'output contains "z"',
      "output does not match /^x\\d$/m",
    ]);
  });

  test("an invalid script lists every problem with its path", () => {
    try {
      parseScript({
        steps: [{}, { run: "ls", timeoutMs: -1 }, { action: { action: "run", args: { command: 1 } } }],
        extra: 1,
      });
      expect.unreachable();
    } catch (err) {
      expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
      const issues = (err as { issues: string[] }).issues;
      expect(issues).toContain("steps[0]: a step needs one of run, write, read, edit, action");
      expect(issues.some((i) => i.startsWith("steps[1].timeoutMs:"))).toBe(true);
      expect(issues.some((i) => i.startsWith("(root):") && i.includes("extra"))).toBe(true);
    }
    expect(() => parseScript({ steps: [{ action: { action: "run", args: { command: 1 } } }] })).toThrow(
      /steps\[0\]\.action\.args\.command/,
    );
  });
});

describe("demo helpers", () => {
  test("node:test spec output is parsed (with colours)", () => {
    const out =
      "\x1b[31m✖ median of an even-length list (1.2ms)\x1b[39m\n✔ mean (0.3ms)\nℹ tests 3\nℹ pass 2\nℹ fail 1\n✖ failing tests:\n";
    expect(parseTestOutput(out, 1)).toEqual({
      exitCode: 1,
      tests: 3,
      pass: 2,
      fail: 1,
      failed: ["median of an even-length list"],
    });
  });

  test("progress: spinner frames on a terminal, plain lines otherwise", async () => {
    let tty = "";
    await new Progress({ write: (t: string) => (tty += t), isTTY: true }).step(
      "build",
      async () => new Promise((r) => setTimeout(r, 120)),
    );
    expect(tty).toContain("\r\x1b[2K");
    expect(tty).toMatch(/✔.*build/);
    let plain = "";
    const p = new Progress({ write: (t: string) => (plain += t) });
    await p.step("build", async (s) => s.update("halfway"));
    await expect(p.step("fail", async () => Promise.reject(new Error("x")))).rejects.toThrow("x");
    expect(plain).toMatch(
      /^\.\.\. build\n {4}halfway\nok {2}build \(\d+ ms\)\n\.\.\. fail\nFAIL fail \(\d+ ms\)\n$/,
    );
  });
});
