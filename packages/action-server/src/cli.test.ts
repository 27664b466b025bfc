import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { parseCliArgs } from "./cli.js";
import { MAX_STDIN_ENV_BYTES, parseStdinEnv, readStdinEnv } from "./stdin-env.js";

describe("parseCliArgs", () => {
  it("reads the contract's arguments and environment", () => {
    expect(
      parseCliArgs(["0", "--working-dir", "/w", "--host", "127.0.0.1", "--username", "u", "--user-id=1000"], {
        SESSION_API_KEY: "k",
        NO_CHANGE_TIMEOUT_SECONDS: "2.5",
        ACTION_SERVER_MAX_UPLOAD_BYTES: "1024",
        ACTION_SERVER_ZIP_LEVEL: "0",
      }),
    ).toEqual({
      port: 0,
      workingDir: "/w",
      host: "127.0.0.1",
      username: "u",
      userId: 1000,
      sessionApiKey: "k",
      noChangeTimeoutMs: 2500,
      maxUploadBytes: 1024,
      zipLevel: 0,
    });
  });

  it("accepts and ignores OpenHands' extra flags", () => {
    expect(
      parseCliArgs(
        ["3000", "--working-dir", "/w", "--plugins", "agent_skills", "jupyter", "--no-enable-browser"],
        {},
      ),
    ).toEqual({
      port: 3000,
      workingDir: "/w",
    });
  });

  it("lists every problem at once", () => {
    expect(() =>
      parseCliArgs(["x", "--user-id", "-1", "--nope"], { NO_CHANGE_TIMEOUT_SECONDS: "0" }),
    ).toThrow(
      /--nope: unknown option[\s\S]*<port>: expected an integer[\s\S]*--working-dir: required[\s\S]*--user-id: expected a non-negative integer[\s\S]*NO_CHANGE_TIMEOUT_SECONDS: expected a positive number/,
    );
  });
});

describe("startActionServer options", () => {
  it("rejects unknown and invalid options, naming each", async () => {
    const { startActionServer } = await import("./start-server.js");
    await expect(
      startActionServer({ workingDir: "/tmp/x", port: 70_000, timeoutMs: 5 } as never),
    ).rejects.toThrow(/Invalid action-server options:[\s\S]*port: [\s\S]*Unrecognized key: "timeoutMs"/);
  });
});

describe("readStdinEnv", () => {
  it("reads one JSON object to the end of the stream", async () => {
    const input = new PassThrough();
    const env = readStdinEnv(input, 5000);
    input.write('{"A":"1",');
    input.end('"B_2":"two"}');
    expect(await env).toEqual({ A: "1", B_2: "two" });
  });

  it("gives up when stdin does not end in time, saying the launcher must close it", async () => {
    const input = new PassThrough();
    input.write('{"A":"1"}');
    await expect(readStdinEnv(input, 50)).rejects.toThrow(
      /stdin did not end within 50 ms; the launcher must/,
    );
  });

  it("refuses more than 1 MiB", async () => {
    const input = new PassThrough();
    const env = readStdinEnv(input, 5000);
    input.end(`{"A":"${"x".repeat(MAX_STDIN_ENV_BYTES)}"}`);
    await expect(env).rejects.toThrow(/stdin is over 1048576 bytes/);
  });

  it("parseStdinEnv accepts the empty object", () => {
    expect(parseStdinEnv("{}")).toEqual({});
  });
});
