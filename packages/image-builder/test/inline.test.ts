import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  fromRegistry,
  INLINE_BUNDLE_PATH,
  INLINE_PARTS_ROOT,
  MAX_INLINE_RUN_BYTES,
  toDockerfile,
} from "../src/index.js";
import { inlineFileCommands } from "../src/inline.js";
import { modalImagePlan } from "../src/modal.js";
import { FakeBin, runLines, runShell, tempDirs } from "./helpers.js";

// The RUN lines that write inline files, run for real in sh, one shell per line as separate build steps, with
// the image's /opt and /usr/local/bin mapped under a temporary directory.

const temp = tempDirs();

/** About 1 MB of JavaScript-like text (the real bundle is ~1 MB of minified JS and compresses alike). */
function fakeBundle(bytes = 1_000_000): string {
  const words = ["const", "function", "return", "await", "require", "exports", "module", "value", "error"];
  let seed = 42;
  const next = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed;
  };
  const lines = ["#!/usr/bin/env node", "'use strict';"];
  let size = 0;
  while (size < bytes) {
    const line = `${words[next() % words.length]} v${next() % 5000} = ${words[next() % words.length]}(${next() % 100_000}, "${next().toString(36)}");`;
    lines.push(line);
    size += line.length + 1;
  }
  lines.push('console.log("bundle ran", JSON.stringify(process.argv.slice(2)));');
  return `${lines.join("\n")}\n`;
}

/** Maps the image's absolute paths under `dir`, as if `dir` were the image's root. */
const local = (dir: string) => (line: string) =>
  line.replaceAll("/opt/", `${dir}/opt/`).replaceAll("/usr/local/bin", `${dir}/usr/local/bin`);

describe("the inline action-server bundle", () => {
  const bundle = fakeBundle();
  const spec = fromRegistry("node:24-bookworm-slim").withActionServer({ strategy: "inline", bundle }).build();

  it(`every RUN line of the Modal definition is at most ${MAX_INLINE_RUN_BYTES} bytes, and the whole is a fraction of the bundle`, () => {
    const plan = modalImagePlan(spec);
    const commands = plan.layers.flat();
    for (const command of commands)
      expect(Buffer.byteLength(command)).toBeLessThanOrEqual(MAX_INLINE_RUN_BYTES);
    const total = commands.reduce((n, c) => n + Buffer.byteLength(c), 0);
    // Deflated then base64: well under half of the bundle (the old plain base64 was 4/3 of it).
    expect(total).toBeLessThan(bundle.length / 2);
    expect(commands.some((c) => c.includes("/tmp/"))).toBe(false);
  });

  it("the lines, run as separate build steps, write the bundle byte for byte and a launcher that runs it", () => {
    const dir = temp();
    const bin = new FakeBin(dir).real("mkdir", "base64", "cat", "chmod", "rm", "wc", "node");
    const lines = runLines(toDockerfile(spec)).slice(1, -1).map(local(dir));
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines)
      expect(runShell(line, bin, { cwd: dir })).toMatchObject({ status: 0, stderr: "" });
    expect(readFileSync(join(dir, INLINE_BUNDLE_PATH), "utf8")).toBe(bundle);
    expect(statSync(join(dir, INLINE_BUNDLE_PATH)).mode & 0o777).toBe(0o755);
    // Nothing is left of the parts once joined.
    expect(readdirSync(join(dir, INLINE_PARTS_ROOT))).toEqual([]);
  });

  it("a build restarted from a cached step (parts written again, or some twice) still joins the right bytes", () => {
    const dir = temp();
    const bin = new FakeBin(dir).real("mkdir", "base64", "cat", "chmod", "rm", "wc", "node");
    const lines = runLines(toDockerfile(spec)).slice(1, -1).map(local(dir));
    const parts = lines.filter((l) => l.includes("printf") && l.includes(INLINE_PARTS_ROOT.slice(1)));
    // First attempt: the first half of the part steps ran, then the builder died.
    for (const line of parts.slice(0, 3)) expect(runShell(line, bin, { cwd: dir }).status).toBe(0);
    // The restart resumes from the cached layer after step 2: steps 2.. run again (step 2 twice in all).
    for (const line of lines.slice(lines.indexOf(parts[2]!))) {
      expect(runShell(line, bin, { cwd: dir })).toMatchObject({ status: 0, stderr: "" });
    }
    expect(readFileSync(join(dir, INLINE_BUNDLE_PATH), "utf8")).toBe(bundle);
  });

  it("a lost part stops the build, saying which parts and what to do, and writes no file", () => {
    const dir = temp();
    const bin = new FakeBin(dir).real("mkdir", "base64", "cat", "chmod", "rm", "wc", "node");
    const commands = inlineFileCommands("/opt/app/bin.cjs", Buffer.from(bundle), "0755", {
      inflateWithNode: true,
    }).map(local(dir));
    for (const line of commands.slice(0, -1)) expect(runShell(line, bin, { cwd: dir }).status).toBe(0);
    const partsDir = join(dir, INLINE_PARTS_ROOT, readdirSync(join(dir, INLINE_PARTS_ROOT))[0]!);
    rmSync(join(partsDir, "00001"));
    const result = runShell(commands.at(-1)!, bin, { cwd: dir });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /^agent-runtime image-builder: the parts of \S*\/opt\/app\/bin\.cjs under \S*\/opt\/agent-runtime\/parts\/[0-9a-f]{16} hold \d+ of \d+ base64 characters \(a build step before this one was lost\); rebuild the image without its cache\n$/,
    );
    expect(existsSync(join(dir, "opt/app/bin.cjs"))).toBe(false);
  });

  it("corrupt parts (same length, other bytes) fail the sha256 check instead of writing a broken server", () => {
    const dir = temp();
    const bin = new FakeBin(dir).real("mkdir", "base64", "cat", "chmod", "rm", "wc", "node");
    const commands = inlineFileCommands("/opt/app/bin.cjs", Buffer.from(bundle), "0755", {
      inflateWithNode: true,
    }).map(local(dir));
    // Step 1 was cached from an older build of other content: its part has the right length, not the bytes.
    const stale = commands[1]!.replace(
      /'([A-Za-z0-9+/=]{100})/,
      (_m, chunk: string) => `'${[...chunk].reverse().join("")}`,
    );
    expect(stale).not.toBe(commands[1]);
    for (const line of [commands[0]!, stale, ...commands.slice(2, -1)])
      expect(runShell(line, bin, { cwd: dir }).status).toBe(0);
    const result = runShell(commands.at(-1)!, bin, { cwd: dir });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /^agent-runtime image-builder: \S*\/opt\/app\/bin\.cjs came out with sha256 [0-9a-f]{64}, expected [0-9a-f]{64}; rebuild the image without its cache\n$/,
    );
    expect(existsSync(join(dir, "opt/app/bin.cjs"))).toBe(false);
  });
});

describe("plain inline files", () => {
  it("stay within the line bound at the size limit (2 MiB), in as few lines as the bound allows", () => {
    const bytes = Buffer.alloc(2 * 1024 * 1024, 7);
    const commands = inlineFileCommands("/data/blob", bytes, "0644");
    for (const command of commands)
      expect(Buffer.byteLength(`RUN ${command}`)).toBeLessThanOrEqual(MAX_INLINE_RUN_BYTES);
    expect(commands).toHaveLength(Math.ceil((Math.ceil(bytes.length / 3) * 4) / 16_000) + 1);
  });
});
