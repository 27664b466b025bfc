import { type ChildProcess, spawn } from "node:child_process";
import { Console } from "node:console";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { inspect } from "node:util";
import { type Logger, RuntimeError, redactingLogger } from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  encodedForms,
  type ResolvedSecretSet,
  redactingTransform,
  redactLogger,
  secretsResolver,
} from "../src/index.js";

const MIN = 6;
const pem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
  type: "pkcs8",
  format: "pem",
});

/** Secret shapes, by the variable that carries each into the sandbox. */
const CORPUS: Record<string, string> = {
  SHORT: "Zq7!pX", // exactly the minimum length
  LONG: randomBytes(3072).toString("base64"),
  UNICODE: "пароль-秘密-🔑-ünïcödé",
  REGEX: "a.b*c+(d)[e]{f}|g^$\\h?/i",
  PEM: String(pem).trim(),
  JSONISH: '{"k":"v\\n","t":true}',
  SHELLY: "p@ss w0rd `x` $HOME ;|& 'q' \"dq\"",
  GITHUB_TOKEN: `ghp_${randomBytes(18).toString("hex")}`,
  AWS_SECRET: `wJalrXUtnFEMI/K7MDENG+bPxRfiCY${randomBytes(6).toString("hex")}`,
};

/** Every form of every corpus value that must never appear. */
function leaks(text: string): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(CORPUS)) {
    for (const form of encodedForms(value, MIN)) {
      if (text.includes(form)) found.push(`${name}: ${JSON.stringify(form.slice(0, 24))}…`);
    }
  }
  return found;
}

const root = mkdtempSync(join(tmpdir(), "secrets-leaks-"));
let set: ResolvedSecretSet;

beforeAll(async () => {
  set = await secretsResolver({
    providers: [{ type: "memory", values: CORPUS }],
    minRedactLength: MIN,
  }).resolve();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A real `Console` writing to a captured stream: formats fields with util.inspect like production logs. */
function consoleLogger(): { logger: Logger; output: () => string } {
  let text = "";
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const c = new Console({ stdout: sink, stderr: sink, colorMode: false, inspectOptions: { depth: 10 } });
  return { logger: c, output: () => text };
}

describe("leak corpus: zero leaks through every path", () => {
  it("the corpus is real: unredacted text does leak", () => {
    expect(leaks(Object.values(CORPUS).join("\n")).length).toBeGreaterThanOrEqual(Object.keys(CORPUS).length);
  });

  it("logs from a real logger wrapped by runtime-core's redactingLogger", () => {
    const { logger, output } = consoleLogger();
    const log = redactingLogger(logger, (v) => set.redactor.redactDeep(v));
    const viaHelper = redactLogger(logger, set.redactor);
    for (const [name, value] of Object.entries(CORPUS)) {
      log.info(`using ${name}=${value}`);
      log.warn("fields", {
        value,
        nested: { deeper: [value, { json: JSON.stringify({ value }) }] },
        b64: Buffer.from(value).toString("base64"),
        url: `https://x.test/?q=${encodeURIComponent(value)}`,
      });
      log.error("failed", { err: new Error(`boom ${value}`, { cause: new Error(value) }) });
      viaHelper.debug(`helper ${value}`, { value });
    }
    log.info("the resolved set itself", { set, env: set.env, files: set.files });
    const text = output();
    expect(text).toContain("[redacted]");
    expect(text).toContain("using GITHUB_TOKEN=");
    expect(leaks(text)).toEqual([]);
  });

  it("thrown errors, redacted at the boundary, and errors the package raises", async () => {
    for (const value of Object.values(CORPUS)) {
      const err = new RuntimeError("INTERNAL", `command failed: ${value}`, {
        cause: new AggregateError([new Error(value)], `agg ${value}`),
        details: { stdout: value },
      });
      const safe = set.redactor.redactError(err);
      for (const text of [
        safe.message,
        String(safe.stack),
        inspect(safe, { depth: 10 }),
        JSON.stringify(safe),
        JSON.stringify(set.redactor.redactDeep({ err })),
      ]) {
        expect(leaks(text)).toEqual([]);
      }
    }
    const resolver = secretsResolver({
      providers: [{ type: "memory", values: CORPUS, required: ["MISSING_ONE"] }],
    });
    let thrown: unknown;
    try {
      await resolver.resolve({ required: ["MISSING_TWO"] });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(RuntimeError);
    expect(leaks(inspect(thrown, { depth: 10 }) + JSON.stringify(thrown))).toEqual([]);
  });

  it("JSON.stringify and util.inspect of resolvers and resolved sets", () => {
    const resolver = secretsResolver({ providers: [{ type: "memory", values: CORPUS }] });
    const texts = [
      JSON.stringify(set),
      JSON.stringify({ set, resolver, env: set.env, files: set.files, redactor: set.redactor }),
      inspect(set, { depth: 20, showHidden: true }),
      inspect(resolver, { depth: 20, showHidden: true }),
      inspect({ env: set.env, redactor: set.redactor }, { depth: 20 }),
      `${set}`,
    ];
    for (const text of texts) expect(leaks(text)).toEqual([]);
  });

  it("output of a real sandbox process, streamed in small chunks", async () => {
    const home = mkdtempSync(join(root, "home-"));
    // The sandbox process prints every secret in several encodings.
    const script = `
      for (const name of ${JSON.stringify(Object.keys(CORPUS))}) {
        const v = process.env[name];
        console.log(name, v);
        console.log(JSON.stringify({ [name]: v }));
        console.log(Buffer.from(v).toString("base64"));
        console.log(Buffer.from("user:" + v).toString("base64"));
        console.log(encodeURIComponent(v));
        console.log(v.replace(/\\n/g, "\\r\\n"));
      }`;
    const child = spawn(process.execPath, ["-e", script], {
      env: { ...set.env, PATH: process.env.PATH ?? "", HOME: home, SHLVL: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    // Re-chunk into 7-byte pieces so that values are split across chunks (and inside UTF-8 sequences).
    const redacting = redactingTransform(set.redactor);
    let raw = "";
    let redacted = "";
    redacting.on("data", (d: Buffer) => {
      redacted += d.toString();
    });
    child.stdout.on("data", (d: Buffer) => {
      raw += d.toString();
      for (let i = 0; i < d.length; i += 7) redacting.write(d.subarray(i, i + 7));
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    await new Promise((resolve) => redacting.end(resolve));
    expect(code).toBe(0);
    expect(new Set(leaks(raw).map((l) => l.split(":")[0])).size).toBe(Object.keys(CORPUS).length);
    expect(leaks(redacted)).toEqual([]);
    expect(redacted).toContain("GITHUB_TOKEN [redacted]");
  });

  const actionServerBin = join(import.meta.dirname, "..", "..", "action-server", "src", "bin.ts");
  it.skipIf(!existsSync(actionServerBin))(
    "observations from a real action server (skipped only when packages/action-server/src/bin.ts is missing)",
    async () => {
      const workDir = mkdtempSync(join(root, "work-"));
      const home = mkdtempSync(join(root, "home-"));
      const apiKey = randomBytes(16).toString("hex");
      const child = spawn(
        process.execPath,
        ["--import", "tsx", actionServerBin, "0", "--working-dir", workDir, "--host", "127.0.0.1"],
        {
          cwd: join(import.meta.dirname, ".."),
          env: { ...set.env, PATH: process.env.PATH ?? "", HOME: home, SHLVL: "1", SESSION_API_KEY: apiKey },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      try {
        const port = await listeningPort(child);
        const run = async (command: string): Promise<unknown> => {
          const res = await fetch(`http://127.0.0.1:${port}/execute_action`, {
            method: "POST",
            headers: { "content-type": "application/json", "X-Session-API-Key": apiKey },
            body: JSON.stringify({ action: { action: "run", args: { command } } }),
          });
          expect(res.status).toBe(200);
          return res.json();
        };
        const observations: unknown[] = [];
        for (const name of Object.keys(CORPUS)) {
          observations.push(await run(`echo "$${name}"`));
          observations.push(await run(`printf %s "$${name}" | base64 -w0; echo`));
        }
        const raw = JSON.stringify(observations);
        // Every secret really reached the sandbox environment and came back in an observation.
        const leakedNames = new Set(leaks(raw).map((l) => l.split(":")[0]));
        expect([...leakedNames].sort()).toEqual(Object.keys(CORPUS).sort());
        const redacted = set.redactor.redactDeep(observations);
        expect(leaks(JSON.stringify(redacted))).toEqual([]);
        expect(leaks(inspect(redacted, { depth: 20 }))).toEqual([]);
      } finally {
        child.kill("SIGTERM");
        await new Promise((resolve) =>
          child.exitCode !== null ? resolve(null) : child.once("close", resolve),
        );
      }
    },
    60_000,
  );
});

function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(
      () => reject(new Error(`action server did not start in 30 s; stderr: ${err}`)),
      30_000,
    );
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      for (const line of out.split("\n")) {
        try {
          const event = JSON.parse(line) as { event?: string; port?: number };
          if (event.event === "listening" && typeof event.port === "number") {
            clearTimeout(timer);
            resolve(event.port);
            return;
          }
        } catch {
          // not a JSON line (yet)
        }
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`action server exited with ${code}; stderr: ${err}`));
    });
  });
}
