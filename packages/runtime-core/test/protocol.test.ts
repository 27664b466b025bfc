import { describe, expect, it } from "vitest";
import {
  cmdRun,
  fileEdit,
  fileRead,
  fileWrite,
  hardTimeoutSuffix,
  type InvalidArgumentError,
  isRuntimeError,
  parseAction,
  parseObservation,
  serializeAction,
  serializeObservation,
  toAction,
  truncateOutput,
} from "../src/index.js";

// The documented example of shared/notes/openhands-protocol.md §3.3.
const exampleAction = {
  id: 12,
  source: "agent",
  message: "Running command: ls",
  action: "run",
  args: {
    command: "ls",
    is_input: false,
    thought: "",
    blocking: false,
    is_static: false,
    cwd: null,
    hidden: false,
    confirmation_state: "confirmed",
    security_risk: -1,
  },
  timeout: 120.0,
};
const exampleObservation = {
  observation: "run",
  content: "README.md\nsrc",
  message: "Command `ls` executed with exit code 0.",
  success: true,
  extras: {
    command: "ls",
    hidden: false,
    metadata: {
      exit_code: 0,
      pid: -1,
      username: "openhands",
      hostname: "<host>",
      working_dir: "/workspace",
      py_interpreter_path: "<which python>",
      prefix: "",
      suffix: "\n[The command completed with exit code 0.]",
    },
  },
};

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
    return (err as InvalidArgumentError).issues as string[];
  }
  throw new Error("expected an INVALID_ARGUMENT error");
}

describe("wire protocol", () => {
  it("round-trips the documented command action exactly", () => {
    const wire = JSON.parse(JSON.stringify(exampleAction));
    const out = serializeAction(parseAction(wire));
    expect(out).toEqual(exampleAction);
    expect(JSON.stringify(out)).toBe(JSON.stringify(exampleAction));
  });

  it("round-trips the documented command observation exactly", () => {
    const out = serializeObservation(parseObservation(JSON.parse(JSON.stringify(exampleObservation))));
    expect(out).toEqual(exampleObservation);
  });

  it("parses once: typed actions pass through toAction as they are, plain objects are parsed there", () => {
    const built = cmdRun("ls");
    expect(toAction(built)).toBe(built);
    const parsed = parseAction({ action: "run", args: { command: "pwd" } });
    expect(toAction(parsed)).toBe(parsed);
    const plain = { action: "run", args: { command: "pwd" } };
    const typed = toAction(plain);
    expect(typed).not.toBe(plain);
    expect(typed.action === "run" && typed.args.is_input).toBe(false);
    // A copy is not the parsed value any more: parsed again (and still checked).
    expect(toAction(JSON.parse(JSON.stringify(built)))).not.toBe(built);
    expect(issuesOf(() => toAction({ action: "run", args: {} }))[0]).toMatch(/^action\.args\.command:/);
  });

  it("serializers only format: no validation and no defaults", () => {
    const partial = { action: "run", args: { command: "pwd" } } as const;
    expect(serializeAction(partial)).toEqual({ action: "run", args: { command: "pwd" } });
    const obs = { observation: "read", content: "x", extras: { path: "/a" } } as const;
    expect(serializeObservation(obs)).toEqual(obs);
  });

  it("fills OpenHands defaults for a minimal action", () => {
    const a = parseAction({ action: "run", args: { command: "pwd" } });
    expect(a.action).toBe("run");
    if (a.action !== "run") throw new Error("narrowing");
    expect(a.args).toMatchObject({
      is_input: false,
      blocking: false,
      is_static: false,
      cwd: null,
      security_risk: -1,
    });
  });

  it("rejects an unknown action type naming the path and the known types", () => {
    const issues = issuesOf(() => parseAction({ action: "teleport", args: {} }));
    expect(issues[0]).toMatch(
      /^action\.action: unknown action type "teleport"; expected one of run, run_ipython/,
    );
  });

  it("rejects malformed fields with every path", () => {
    const issues = issuesOf(() => parseAction({ action: "read", args: { path: 5, start: "x" } }));
    expect(issues.some((i) => i.startsWith("action.args.path:"))).toBe(true);
    expect(issues.some((i) => i.startsWith("action.args.start:"))).toBe(true);
    expect(issuesOf(() => parseAction(null))[0]).toMatch(/^action: expected object/);
    expect(
      issuesOf(() => parseAction({ action: "edit", args: { path: "/a", command: "explode" } }))[0],
    ).toMatch(/^action\.args\.command:/);
  });

  it("rejects a malformed observation naming the path", () => {
    const issues = issuesOf(() =>
      parseObservation({ observation: "run", content: 1, extras: { command: "x", metadata: {} } }),
    );
    expect(issues[0]).toMatch(/^observation\.content:/);
  });

  it("keeps success only on observation types that define it", () => {
    const read = serializeObservation({ observation: "read", content: "x", extras: { path: "/a" } });
    expect("success" in read).toBe(false);
    const err = serializeObservation({ observation: "error", content: "boom", extras: { error_id: "" } });
    expect(err).toEqual({ observation: "error", content: "boom", extras: { error_id: "" } });
  });

  it("builds typed actions with units converted to the wire", () => {
    const run = cmdRun("npm test", { timeoutMs: 2500, blocking: true });
    expect(run.timeout).toBe(2.5);
    expect(run.args.blocking).toBe(true);
    expect(cmdRun("C-c", { isInput: true }).args.is_input).toBe(true);
    expect(fileRead("/a", { start: 1, end: 2 }).args).toMatchObject({
      path: "/a",
      start: 1,
      end: 2,
      impl_source: "default",
    });
    expect(fileWrite("/a", "x").args).toMatchObject({ path: "/a", content: "x", start: 0, end: -1 });
    const edit = fileEdit("/a.py", { command: "str_replace", oldStr: "a", newStr: "b" });
    expect(edit.args).toMatchObject({
      command: "str_replace",
      old_str: "a",
      new_str: "b",
      impl_source: "oh_aci",
    });
    expect(fileEdit("/a.py", { command: "insert", insertLine: 3, newStr: "z" }).args.insert_line).toBe(3);
  });

  it("truncates long output to head and tail around the marker", () => {
    const s = "a".repeat(20_000) + "b".repeat(20_000);
    const t = truncateOutput(s);
    expect(t.startsWith("a".repeat(15_000))).toBe(true);
    expect(t.endsWith("b".repeat(15_000))).toBe(true);
    expect(t).toContain("\n[... Observation truncated due to length ...]\n");
    expect(truncateOutput("short")).toBe("short");
    expect(hardTimeoutSuffix(3)).toMatch(/^\n\[The command timed out after 3\.0 seconds\. You may wait/);
  });
});
