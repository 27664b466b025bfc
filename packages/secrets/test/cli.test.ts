import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  watch,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "tsup";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EncryptedFileStore, generateKey } from "../src/index.js";
import tsupConfig from "../tsup.config.ts";
import { collectProcess } from "./helpers/run-process.js";

const pkgDir = join(import.meta.dirname, "..");
let buildDir = "";
let cli = "";
const work = mkdtempSync(join(tmpdir(), "secrets-cli-"));
const key = generateKey();

// The built CLI, from current sources, with the package's own tsup config (banner included). It lives
// under node_modules so that node resolves its peer dependencies exactly as in an install.
beforeAll(async () => {
  const cacheDir = join(pkgDir, "node_modules", ".cache");
  mkdirSync(cacheDir, { recursive: true });
  buildDir = mkdtempSync(join(cacheDir, "cli-test-"));
  const base = Array.isArray(tsupConfig) ? tsupConfig[0] : tsupConfig;
  await build({
    ...(base as object),
    entry: ["src/cli.ts"],
    format: ["esm"],
    dts: false,
    sourcemap: false,
    outDir: buildDir,
    config: false,
    silent: true,
  });
  cli = join(buildDir, "cli.js");
}, 60_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function env(store: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: work,
    AGENT_RUNTIME_SECRETS_KEY: key,
    AGENT_RUNTIME_SECRETS_FILE: store,
    ...extra,
  };
}

function runCli(
  args: string[],
  options: { env: Record<string, string>; input?: string | Buffer },
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    // A command that does not read stdin may exit before the write: collectProcess handles that EPIPE.
    collectProcess(child, options.input ?? "").then(resolve, reject);
  });
}

function collect(child: ChildProcess): Promise<Result> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

let n = 0;
const freshStore = (): string => join(work, `store-${++n}`, "secrets.enc");

describe("agent-runtime-secrets (built CLI, real processes)", () => {
  it("is an executable script with a node shebang", () => {
    expect(readFileSync(cli, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
    chmodSync(cli, 0o755);
    const help = spawnSync(cli, ["--help"], { env: env(freshStore()), encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("Usage: agent-runtime-secrets");
  });

  it("set reads stdin, get hides the value unless --reveal, list shows names, rm removes", async () => {
    const store = freshStore();
    const e = env(store);
    const value = "multi-line\nvalue with 'quotes' and ünïcode 🔑";
    const set = await runCli(["set", "API_KEY"], { env: e, input: `${value}\n` });
    expect(set).toMatchObject({ code: 0, stdout: "" });
    expect(set.stderr).toContain(`Stored API_KEY in ${store}`);
    expect(statSync(store).mode & 0o777).toBe(0o600);
    await runCli(["set", "OTHER_KEY", "--store", store], {
      env: env("/nonexistent/ignored"),
      input: "other",
    });

    const hidden = await runCli(["get", "API_KEY"], { env: e });
    expect(hidden.code).toBe(0);
    expect(hidden.stdout).toBe("");
    expect(hidden.stderr).toContain("API_KEY is set (value hidden; pass --reveal to print it)");
    expect(hidden.stdout + hidden.stderr).not.toContain("value with");

    const revealed = await runCli(["get", "API_KEY", "--reveal"], { env: e });
    expect(revealed).toMatchObject({ code: 0, stdout: value });

    const list = await runCli(["list"], { env: e });
    expect(list).toMatchObject({ code: 0, stdout: "API_KEY\nOTHER_KEY\n" });

    expect((await runCli(["rm", "API_KEY"], { env: e })).code).toBe(0);
    const gone = await runCli(["get", "API_KEY"], { env: e });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`API_KEY is not in the store ${store}`);
    expect((await runCli(["rm", "API_KEY"], { env: e })).code).toBe(1);
    // The library reads what the CLI wrote.
    expect(await new EncryptedFileStore({ path: store, env: e }).load()).toEqual({ OTHER_KEY: "other" });
  });

  it("refuses a value on the command line and leaves the store untouched", async () => {
    const store = freshStore();
    const res = await runCli(["set", "TOKEN", "argv-secret-value"], { env: env(store) });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("refusing to read a secret value from the command line");
    expect(res.stderr).toContain("ps");
    expect(res.stderr).not.toContain("argv-secret-value");
    expect(existsSync(store)).toBe(false);
  });

  it("reports usage errors with exit code 2", async () => {
    const e = env(freshStore());
    for (const args of [[], ["frobnicate"], ["get"], ["list", "extra"], ["get", "X", "--bogus"]]) {
      const res = await runCli(args, { env: e });
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stderr).toContain("agent-runtime-secrets:");
    }
    const empty = await runCli(["set", "EMPTY_VALUE"], { env: e, input: "\n" });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain("empty");
  });

  it("explains a missing key, a wrong key and a tampered store", async () => {
    const store = freshStore();
    expect((await runCli(["set", "A_NAME"], { env: env(store), input: "a-value-123" })).code).toBe(0);

    const noKey = await runCli(["list"], { env: { ...env(store), AGENT_RUNTIME_SECRETS_KEY: "" } });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain("AGENT_RUNTIME_SECRETS_KEY is not set");

    const wrong = await runCli(["list"], { env: env(store, { AGENT_RUNTIME_SECRETS_KEY: generateKey() }) });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("different key");

    const envelope = JSON.parse(readFileSync(store, "utf8")) as { tag: string };
    const tag = Buffer.from(envelope.tag, "base64");
    tag[3]! ^= 0xff;
    writeFileSync(store, JSON.stringify({ ...envelope, tag: tag.toString("base64") }));
    const tampered = await runCli(["get", "A_NAME", "--reveal"], { env: env(store) });
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toBe("");
    expect(tampered.stderr).toContain("tampered or corrupted");
  });

  it("keygen writes a 0600 key file and refuses to overwrite it", async () => {
    const keyFile = join(work, "generated.key");
    const res = await runCli(["keygen", "--key-file", keyFile], { env: env(freshStore()) });
    expect(res.code).toBe(0);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(res.stderr).toContain("fingerprint");
    expect(res.stdout + res.stderr).not.toContain(readFileSync(keyFile, "utf8").trim());
    const again = await runCli(["keygen", "--key-file", keyFile], { env: env(freshStore()) });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("refusing to overwrite");
    const store = freshStore();
    const e = { ...env(store), AGENT_RUNTIME_SECRETS_KEY: "" };
    expect((await runCli(["set", "K_NAME", "--key-file", keyFile], { env: e, input: "v-123456" })).code).toBe(
      0,
    );
    const printed = await runCli(["keygen"], { env: e });
    expect(printed.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
  });

  // Needs util-linux `script` to give the CLI a pseudo-terminal.
  const hasScript = spawnSync("script", ["--version"]).status === 0;
  it.skipIf(!hasScript)(
    "reads the value from a hidden prompt on a terminal (needs util-linux script)",
    async () => {
      const store = freshStore();
      const command = `'${process.execPath}' '${cli}' set PROMPTED`;
      const child = spawn("script", ["-qec", command, "/dev/null"], {
        env: env(store),
        stdio: ["pipe", "pipe", "pipe"],
      });
      const done = collect(child);
      let seen = "";
      await new Promise<void>((resolve) => {
        child.stdout?.on("data", (d: Buffer) => {
          seen += d.toString();
          if (seen.includes("input hidden")) resolve();
        });
      });
      child.stdin?.write("typed-secret-123\r");
      const res = await done;
      expect(res.code).toBe(0);
      expect(res.stdout).not.toContain("typed-secret-123");
      expect(await new EncryptedFileStore({ path: store, env: env(store) }).get("PROMPTED")).toBe(
        "typed-secret-123",
      );
    },
  );

  it("leaves the old store intact when the writer is SIGKILLed mid-write", async () => {
    const store = freshStore();
    const e = env(store);
    expect((await runCli(["set", "OLD_NAME"], { env: e, input: "old-value-kept" })).code).toBe(0);
    const oldBytes = readFileSync(store);
    const dir = join(store, "..");
    const big = Buffer.alloc(24 * 1024 * 1024, "x");
    let interrupted = 0;
    for (let attempt = 0; attempt < 5 && interrupted === 0; attempt++) {
      const child = spawn(process.execPath, [cli, "set", "BIG_VALUE"], {
        env: e,
        stdio: ["pipe", "pipe", "pipe"],
      });
      const watcher = watch(dir, (_event, file) => {
        if (file?.includes(".tmp-")) child.kill("SIGKILL");
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_c, s) => resolve(s)));
      child.stdin?.on("error", () => {});
      child.stdin?.end(big);
      const signal = await exited;
      watcher.close();
      // Whatever happened, the store is a complete, readable version.
      const now = await new EncryptedFileStore({ path: store, env: e }).load();
      if (signal === "SIGKILL" && readdirSync(dir).some((f) => f.includes(".tmp-"))) {
        interrupted++;
        expect(now).toEqual({ OLD_NAME: "old-value-kept" });
        expect(readFileSync(store).equals(oldBytes)).toBe(true);
      } else {
        expect(Object.keys(now).sort()).toEqual(["BIG_VALUE", "OLD_NAME"]);
      }
    }
    expect(interrupted, "no attempt was killed between temp-file creation and rename").toBe(1);
    // The next write removes the dead writer's temp file.
    expect((await runCli(["set", "NEXT_NAME"], { env: e, input: "next-value" })).code).toBe(0);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
    // Up to five 24 MiB encrypt-and-write rounds: generous on a loaded 2-core machine.
  }, 90_000);
});
