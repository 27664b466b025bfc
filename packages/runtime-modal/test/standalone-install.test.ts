import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type ModalEmulator, startModalEmulator } from "@agent-runtime/modal-emulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runNode } from "./helpers.js";

// The "must show": runtime-modal and what it needs (runtime-core, action-server, image-builder), packed
// with `pnpm pack` (workspace: ranges become versions) and installed with npm into an empty project, creates a
// sandbox on modal-emulator with no other package of ours, and installs no better-sqlite3.

const packagesDir = resolve(import.meta.dirname, "..", "..");
/** What runtime-modal needs, in build order (runtime-core is its peer; action-server and image-builder its dependencies). */
const PACKED = ["runtime-core", "action-server", "image-builder", "runtime-modal"] as const;
/** Packages of ours that must not be installed: the plugins runtime-modal used to import, and the native storage. */
const ABSENT = [
  "@agent-runtime/cost-guard",
  "@agent-runtime/secrets",
  "@agent-runtime/sqlite",
  "better-sqlite3",
];

/** The environment without the pnpm/npm/vitest variables of the test run, so npm behaves as on a user's machine. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|PNPM|NODE_PATH$|NODE_OPTIONS$|VITEST|MODAL_|AR_TEST_)/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, npm_config_update_notifier: "false", ...extra };
}

/** CI builds before it tests; a checkout without a build gets the missing dist/ built here. */
function ensureBuilt(): void {
  for (const name of PACKED) {
    if (existsSync(join(packagesDir, name, "dist", "index.js"))) continue;
    execFileSync("pnpm", ["--filter", `@agent-runtime/${name}`, "build"], {
      cwd: packagesDir,
      stdio: "pipe",
    });
  }
}

/** What the user writes: the README's quick start, credentials and server from the environment. */
const SCRIPT = `
import { modalRuntime } from "@agent-runtime/runtime-modal";

const modal = modalRuntime({ appName: process.env.APP_NAME, cpuCores: 0.25, memoryMiB: 512 });
const runtime = await modal.create({ sessionId: "standalone-1" });
await runtime.connect();
const observation = await runtime.runCommand("echo hi");
console.log(JSON.stringify({
  content: observation.content,
  exitCode: observation.extras.metadata.exit_code,
  sandboxId: runtime.sandboxId,
  resolvedFrom: import.meta.resolve("@agent-runtime/runtime-modal"),
}));
await runtime.close();
await modal.close();
`;

describe("runtime-modal, packed and installed alone with npm", () => {
  let work: string;
  let emulator: ModalEmulator | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "runtime-modal-standalone-"));
    emulator = await startModalEmulator({ strict: true });
  });
  afterAll(async () => {
    await emulator?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("installs without better-sqlite3 or our other plugins, and runs `echo hi` on modal-emulator", async () => {
    ensureBuilt();
    const packs = join(work, "packs");
    mkdirSync(packs);
    for (const name of PACKED) {
      execFileSync("pnpm", ["pack", "--pack-destination", packs], {
        cwd: join(packagesDir, name),
        stdio: "pipe",
        env: cleanEnv(),
      });
    }
    const tarballs = readdirSync(packs)
      .filter((f) => f.endsWith(".tgz"))
      .sort();
    expect(tarballs.map((t) => t.replace(/-\d+\.\d+\.\d+\.tgz$/, ""))).toEqual([
      "agent-runtime-action-server",
      "agent-runtime-image-builder",
      "agent-runtime-runtime-core",
      "agent-runtime-runtime-modal",
    ]);
    // pnpm pack wrote versions where the workspace has workspace: ranges.
    const packedManifest = execFileSync(
      "tar",
      ["-xOzf", join(packs, tarballs.find((t) => t.includes("runtime-modal"))!), "package/package.json"],
      { encoding: "utf8" },
    );
    expect(packedManifest).not.toContain("workspace:");
    expect(Object.keys(JSON.parse(packedManifest).dependencies).sort()).toEqual([
      "@agent-runtime/action-server",
      "@agent-runtime/image-builder",
      "modal",
    ]);

    const app = join(work, "app");
    mkdirSync(app);
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    const started = performance.now();
    execFileSync(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        ...tarballs.map((t) => join(packs, t)),
      ],
      { cwd: app, stdio: "pipe", env: cleanEnv() },
    );
    console.info(
      `npm install of runtime-modal's four tarballs: ${Math.round(performance.now() - started)} ms`,
    );

    // No better-sqlite3 (nor our plugins) on disk, and no package in the lockfile that needs it.
    for (const name of ABSENT) expect(existsSync(join(app, "node_modules", name)), name).toBe(false);
    const lock = JSON.parse(readFileSync(join(app, "package-lock.json"), "utf8")) as {
      packages: Record<string, Record<string, Record<string, string> | undefined>>;
    };
    const installed = Object.keys(lock.packages);
    expect(installed).toContain("node_modules/modal");
    expect(installed).toContain("node_modules/zod");
    for (const name of ABSENT)
      expect(
        installed.filter((p) => p.endsWith(`node_modules/${name}`)),
        name,
      ).toEqual([]);
    const needers = Object.entries(lock.packages)
      .filter(([, meta]) =>
        ["dependencies", "optionalDependencies", "peerDependencies"].some((field) =>
          Object.keys(meta[field] ?? {}).some((dep) => ABSENT.includes(dep)),
        ),
      )
      .map(([path]) => path);
    expect(needers).toEqual([]);

    // The user's script, with the SDK's own environment variables pointing at the emulator.
    writeFileSync(join(app, "sandbox.mjs"), SCRIPT);
    const env = cleanEnv({ ...emulator!.env(), APP_NAME: `standalone-${process.pid}` });
    const run = await runNode(["sandbox.mjs"], { cwd: app, env, timeoutMs: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout.trim().split("\n").pop()!) as {
      content: string;
      exitCode: number;
      sandboxId: string;
      resolvedFrom: string;
    };
    expect(result.content.trim()).toBe("hi");
    expect(result.exitCode).toBe(0);
    expect(result.resolvedFrom).toContain(`${app}/node_modules/@agent-runtime/runtime-modal/`);
    const sandbox = emulator!.listSandboxes().find((s) => s.sandboxId === result.sandboxId);
    expect(sandbox?.appName).toBe(`standalone-${process.pid}`);
    expect(sandbox?.running).toBe(false);

    // The CommonJS entry loads too.
    const cjs = await runNode(
      ["-e", 'const m = require("@agent-runtime/runtime-modal"); console.log(typeof m.modalRuntime);'],
      { cwd: app, env: cleanEnv(), timeoutMs: 120_000 },
    );
    expect(cjs.stderr).toBe("");
    expect(cjs.stdout.trim()).toBe("function");
  }, 300_000);
});
