import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { ModalClient } from "modal";
import { afterAll, expect, test } from "vitest";
import { parseCliArgs, runCli } from "../src/cli.js";
import { eventually } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "modal-emulator-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io(stdin?: PassThrough) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
      stdin,
    },
  };
}

test("--help prints usage; bad arguments exit 2 naming the problem", async () => {
  const help = io();
  expect(await runCli(["--help"], help.io)).toEqual({ exitCode: 0 });
  expect(help.out.join("")).toMatch(/^Usage: agent-runtime-modal-emulator/);

  for (const [args, pattern] of [
    [["--bogus"], /unknown argument "--bogus"/],
    [["--port", "x"], /--port needs an integer/],
    [["--isolation", "docker"], /--isolation must be auto, bwrap or none/],
    [["--secret", "novalues"], /--secret expects NAME:KEY=VALUE/],
    [["--secrets-file", join(dir, "missing.json")], /--secrets-file/],
    [["--fail", "OnlyMethod"], /--fail expects METHOD:STATUS/],
    [["--engine", "podman"], /--engine must be docker or docker=ADDRESS, got "podman"/],
    [["--engine", "docker", "--engine-base-map", "no-target"], /--engine-base-map expects FROM=TO/],
    [["--engine-base-map", "a=b"], /--engine-base-map needs --engine docker/],
  ] as const) {
    const bad = io();
    expect((await runCli(args, bad.io)).exitCode).toBe(2);
    expect(bad.err.join("")).toMatch(pattern);
  }
});

test("parses --engine with and without an address, and repeatable base image maps", () => {
  expect(parseCliArgs(["--engine", "docker"]).options.sandboxEngine).toEqual({ kind: "docker" });
  expect(
    parseCliArgs([
      "--engine=docker=unix:///run/x.sock",
      "--engine-base-map",
      "node:24-bookworm-slim=localhost/base",
      "--engine-base-map=a:1=b",
    ]).options.sandboxEngine,
  ).toEqual({
    kind: "docker",
    address: "unix:///run/x.sock",
    baseImageMap: { "node:24-bookworm-slim": "localhost/base", "a:1": "b" },
  });
});

test("parses repeatable secrets, a secrets file and faults", () => {
  writeFileSync(join(dir, "secrets.json"), JSON.stringify({ fromfile: { K: "v" } }));
  const parsed = parseCliArgs([
    "--secret",
    "a:X=1,Y=2",
    "--secret=b:Z=3",
    "--secrets-file",
    join(dir, "secrets.json"),
    "--fail",
    "SandboxCreateV2:UNAVAILABLE:2",
    "--delay-creates",
    "10",
    "--port=0",
  ]);
  expect(parsed.options.secrets).toEqual({ a: { X: "1", Y: "2" }, b: { Z: "3" }, fromfile: { K: "v" } });
  expect(parsed.fails).toEqual([{ method: "SandboxCreateV2", status: "UNAVAILABLE", n: 2 }]);
  expect(parsed.delayCreatesMs).toBe(10);
});

test("--strict and --lenient set the mode; both at once is an error", async () => {
  expect(parseCliArgs(["--strict"]).options.strict).toBe(true);
  expect(parseCliArgs(["--lenient"]).options.strict).toBe(false);
  expect(parseCliArgs([]).options.strict).toBeUndefined();
  const both = io();
  expect((await runCli(["--strict", "--lenient"], both.io)).exitCode).toBe(2);
  expect(both.err.join("")).toMatch(/--strict and --lenient contradict each other/);
});

test("prints the environment, serves the SDK, takes fault commands on stdin, and stop() ends every sandbox", async () => {
  const stdin = new PassThrough();
  const cli = io(stdin);
  const { session, exitCode } = await runCli(
    [
      "--json",
      "--strict",
      "--secret",
      "cli-secret:TOKEN=t0ps3cret",
      "--fail",
      "SandboxCreateV2:UNAVAILABLE:1",
    ],
    cli.io,
  );
  expect(exitCode).toBe(0);
  try {
    const printed = JSON.parse(cli.out.join("")) as { env: Record<string, string>; strict: boolean };
    expect(printed.env["MODAL_SERVER_URL"]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(printed.strict).toBe(true);

    process.env["MODAL_SERVER_URL"] = printed.env["MODAL_SERVER_URL"];
    const client = new ModalClient({
      tokenId: printed.env["MODAL_TOKEN_ID"]!,
      tokenSecret: printed.env["MODAL_TOKEN_SECRET"]!,
    });
    delete process.env["MODAL_SERVER_URL"];
    const app = await client.apps.fromName("cli", { createIfMissing: true });
    const secret = await client.secrets.fromName("cli-secret", { requiredKeys: ["TOKEN"] });
    const sb = await client.sandboxes.create(app, client.images.fromRegistry("alpine:3.21"), {
      secrets: [secret],
    });
    const p = await sb.exec(["sh", "-c", "echo $TOKEN"]);
    expect(await p.stdout.readText()).toBe("t0ps3cret\n");

    cli.out.length = 0;
    stdin.write("list\n");
    await eventually(() => cli.out.join("").includes(`${sb.sandboxId} running`));
    stdin.write(`evict ${sb.sandboxId}\n`);
    await eventually(() => cli.out.join("").includes("evicted"));
    expect(await sb.wait()).toBe(137);
    cli.out.length = 0;
    stdin.write("throttle AppGetOrCreate 1 0.2\n");
    await eventually(() => cli.out.join("").includes("ok"));
    const t0 = Date.now();
    await client.apps.fromName("cli", { createIfMissing: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    stdin.write("fail NoSuchMethod NOT_A_STATUS\n");
    await eventually(() => cli.err.join("").includes("unknown gRPC status"));
    client.close();
  } finally {
    await session?.stop();
  }
  expect(session!.emulator.listSandboxes().every((s) => !s.running)).toBe(true);
});
