import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { imageTags, toDockerfile } from "../src/index.js";
import { tempDir } from "./helpers.js";

const packageDir = resolve(import.meta.dirname, "..");

/** The environment without the pnpm/npm variables of the test run, so npm behaves as on a user's machine. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|PNPM|NODE_PATH$|NODE_OPTIONS$|VITEST)/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

const spec = {
  base: { kind: "registry", image: "python:3.12-slim" },
  steps: [
    { kind: "apt-install", packages: ["git", "x'; pwn; echo '"] },
    { kind: "env", vars: { PS1: "$(whoami)> " } },
  ],
  server: { kind: "agent-runtime", install: { strategy: "npm", version: "0.1.0" } },
};

/**
 * The manifest as `pnpm pack` writes it inside the workspace: `workspace:` ranges become versions (the staging
 * directory is outside the workspace, where pnpm cannot resolve them) and dev dependencies do not matter.
 */
function stagedManifest(): Record<string, unknown> {
  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as {
    peerDependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  delete manifest.devDependencies;
  for (const [name, range] of Object.entries(manifest.peerDependencies ?? {})) {
    if (!range.startsWith("workspace:")) continue;
    const dir = resolve(packageDir, "..", name.replace("@agent-runtime/", ""));
    const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string };
    manifest.peerDependencies![name] = `${range.slice("workspace:".length)}${version}`;
  }
  return manifest;
}

describe("the packed package, installed alone", () => {
  const work = tempDir("image-builder-pack-");
  afterAll(() => work.cleanup());

  it("installs from its tarball with npm (no workspace links) and renders a Dockerfile through the CLI", () => {
    // Build into a staging copy so the package's own dist/ (which lint may be reading) is left alone.
    const stage = join(work.dir, "stage");
    execFileSync("pnpm", ["exec", "tsup", "--out-dir", join(stage, "dist")], {
      cwd: packageDir,
      stdio: "pipe",
    });
    writeFileSync(join(stage, "package.json"), JSON.stringify(stagedManifest(), null, 2));
    copyFileSync(join(packageDir, "README.md"), join(stage, "README.md"));
    execFileSync("pnpm", ["pack", "--pack-destination", work.dir], {
      cwd: stage,
      stdio: "pipe",
      env: cleanEnv(),
    });
    const tarball = readdirSync(work.dir).find((f) => f.endsWith(".tgz"));
    expect(tarball).toMatch(/^agent-runtime-image-builder-\d+\.\d+\.\d+\.tgz$/);

    const app = join(work.dir, "app");
    execFileSync("mkdir", ["-p", app]);
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    execFileSync(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        join(work.dir, tarball!),
      ],
      {
        cwd: app,
        stdio: "pipe",
        env: cleanEnv({ npm_config_update_notifier: "false" }),
      },
    );
    const installed = join(app, "node_modules", "@agent-runtime", "image-builder");
    expect(lstatSync(installed).isSymbolicLink()).toBe(false);
    expect(existsSync(join(installed, "src"))).toBe(false);
    // modal and docker-engine are optional peers: not installed, and nothing below needs them.
    expect(existsSync(join(app, "node_modules", "modal"))).toBe(false);
    expect(existsSync(join(app, "node_modules", "@agent-runtime", "docker-engine"))).toBe(false);

    writeFileSync(join(app, "spec.json"), JSON.stringify(spec));
    const bin = join(app, "node_modules", ".bin", "agent-runtime-image");
    const dockerfile = spawnSync(bin, ["dockerfile", "spec.json"], {
      cwd: app,
      encoding: "utf8",
      env: cleanEnv(),
    });
    expect(dockerfile.stderr).toBe("");
    expect(dockerfile.status).toBe(0);
    expect(dockerfile.stdout).toBe(toDockerfile(spec as never));
    expect(dockerfile.stdout).toContain("FROM python:3.12-slim\n");

    // Same tags in another time zone and locale.
    const hash = spawnSync(bin, ["hash", "spec.json"], {
      cwd: app,
      encoding: "utf8",
      env: cleanEnv({ TZ: "Pacific/Chatham", LC_ALL: "tr_TR.UTF-8", LANG: "tr_TR.UTF-8" }),
    });
    expect(JSON.parse(hash.stdout)).toEqual(imageTags(spec as never));

    const invalid = spawnSync(bin, ["validate", "-"], {
      cwd: app,
      encoding: "utf8",
      input: JSON.stringify({ ...spec, steps: [{ kind: "apt-install", packages: ["-f"] }] }),
      env: cleanEnv(),
    });
    expect(invalid.status).toBe(1);
    expect(invalid.stderr).toContain("steps[0].packages[0]: must not start with '-'");

    // build needs the optional peer docker-engine: without it, a clear error saying what to install.
    const build = spawnSync(bin, ["build", "spec.json", "--engine-address", "unix:///nonexistent.sock"], {
      cwd: app,
      encoding: "utf8",
      env: cleanEnv(),
    });
    expect(build.status).toBe(1);
    expect(build.stdout).toBe("");
    expect(build.stderr).toContain(
      "FAILED_PRECONDITION: Building through a container engine needs @agent-runtime/docker-engine",
    );

    // Both module formats and the ./modal entry load without modal installed.
    const esm = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'import { fromRegistry, toDockerfile } from "@agent-runtime/image-builder";' +
          'import { modalImagePlan } from "@agent-runtime/image-builder/modal";' +
          'const s = fromRegistry("alpine:3.20").run("true").build();' +
          "console.log(toDockerfile(s).split('\\n')[1], modalImagePlan(s).layers.length);",
      ],
      { cwd: app, encoding: "utf8", env: cleanEnv() },
    );
    expect(esm.stderr).toBe("");
    expect(esm.stdout).toBe("FROM alpine:3.20 1\n");
    const cjs = spawnSync(
      process.execPath,
      ["-e", 'const m = require("@agent-runtime/image-builder/modal"); console.log(typeof m.toModalImage)'],
      { cwd: app, encoding: "utf8", env: cleanEnv() },
    );
    expect(cjs.stdout).toBe("function\n");
  }, 240_000);
});
