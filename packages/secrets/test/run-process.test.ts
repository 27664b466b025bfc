import { describe, expect, it } from "vitest";
import { runProcess } from "./helpers/run-process.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

describe("test helper runProcess (the cause of the git-credentials run's unhandled `write EPIPE`)", () => {
  it("a child that exits at once while we write its stdin: EPIPE is reported in the result, never thrown", async () => {
    // 8 MiB never fits in the pipe's buffer and the child reads none of it, so the write fails with EPIPE
    // every time: what the small inputs of the git and CLI tests met only when the child won the race under
    // load. Before the fix this was an unhandled `error` event on stdin, which failed the whole run.
    const result = await runProcess("sh", ["-c", "exit 3"], { env, input: Buffer.alloc(8 << 20, 0x61) });
    expect(result.code).toBe(3);
    expect(result.inputRefused).toBe(true);
  });

  it("a child that reads its input gets all of it", async () => {
    const input = "x".repeat(1 << 20);
    const result = await runProcess("wc", ["-c"], { env, input });
    expect(result.stdout.trim()).toBe(String(input.length));
    expect(result.inputRefused).toBe(false);
  });
});
