import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ensureRuntimeCommand,
  fromRegistry,
  INLINE_BUNDLE_PATH,
  INLINE_LAUNCHER_PATH,
  imageTags,
  openHandsRuntimeSpec,
  parseImageSpec,
  readActionServerBundle,
  serverLaunch,
  toDockerfile,
} from "../src/index.js";
import { modalImagePlan } from "../src/modal.js";
import { FakeBin, runLines, runShell, tempDirs } from "./helpers.js";

const temp = tempDirs();

const fakeNode = (version: string) =>
  `#!/bin/sh\ncase "$1" in -p) echo ${version.split(".")[0]};; --version) echo v${version};; esac\n`;

/**
 * A stand-in base image: PATH holds only these programs. `apt-get` and `apk` record their calls and
 * "install" the packages they are asked for (nodejs gives a node reporting `installs`).
 */
function baseImage(options: {
  node?: string;
  bash?: boolean;
  npm?: boolean;
  manager?: "apt-get" | "apk";
  installs?: string;
}) {
  const dir = temp();
  const bin = new FakeBin(dir).recorder("rm");
  if (options.node) bin.script("node", fakeNode(options.node));
  if (options.bash) bin.real("bash");
  if (options.npm) bin.recorder("npm");
  if (options.manager) {
    const installs = options.installs ?? "18.19.0";
    bin.script(
      options.manager,
      `#!${process.execPath}
const fs = require("node:fs"), path = require("node:path");
fs.appendFileSync(${JSON.stringify(bin.log)}, JSON.stringify([${JSON.stringify(options.manager)}, ...process.argv.slice(2)]) + "\\n");
const dir = ${JSON.stringify(bin.dir)};
const put = (name, text) => { fs.writeFileSync(path.join(dir, name), text); fs.chmodSync(path.join(dir, name), 0o755); };
for (const pkg of process.argv.slice(2)) {
  if (pkg === "nodejs") put("node", ${JSON.stringify(fakeNode(installs))});
  if (pkg === "bash" && !fs.existsSync(path.join(dir, "bash"))) fs.symlinkSync("/bin/bash", path.join(dir, "bash"));
  if (pkg === "npm") put("npm", "#!/bin/sh\\n");
}
`,
    );
  }
  return { dir, bin };
}

describe("ensuring Node.js >= 20 and bash in any base", () => {
  it("installs nothing when the base already has them", () => {
    const { bin, dir } = baseImage({ node: "20.11.1", bash: true, npm: true, manager: "apt-get" });
    const result = runShell(ensureRuntimeCommand(20, true), bin, { cwd: dir });
    expect(result).toMatchObject({ status: 0, stderr: "" });
    expect(bin.calls()).toEqual([]);
  });

  it("installs what is missing with apt-get on Debian/Ubuntu bases", () => {
    const { bin, dir } = baseImage({ manager: "apt-get", installs: "20.19.2" }); // Debian trixie's nodejs
    const result = runShell(ensureRuntimeCommand(20, true), bin, { cwd: dir });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(bin.calls().filter((c) => c[0] === "apt-get")).toEqual([
      ["apt-get", "update"],
      ["apt-get", "install", "-y", "--no-install-recommends", "ca-certificates", "nodejs", "bash", "npm"],
    ]);
  });

  it("installs what is missing with apk on Alpine bases", () => {
    const { bin, dir } = baseImage({ manager: "apk", installs: "20.15.1" });
    const result = runShell(ensureRuntimeCommand(20, false), bin, { cwd: dir });
    expect(result).toMatchObject({ status: 0, stderr: "" });
    expect(bin.calls()).toEqual([["apk", "add", "--no-cache", "ca-certificates", "nodejs", "bash"]]);
  });

  it("fails clearly when the installed Node.js is too old (Debian bookworm's own nodejs is 18)", () => {
    const { bin, dir } = baseImage({ node: "18.19.0", bash: true, manager: "apt-get", installs: "18.19.0" });
    const result = runShell(ensureRuntimeCommand(20, false), bin, { cwd: dir });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      "the action-server needs Node.js >= 20 (supported lines: 20, 22, 24), the image has v18.19.0",
    );
    expect(result.stderr).toContain("node:24-bookworm-slim");
  });

  it("honours a higher floor", () => {
    const { bin, dir } = baseImage({ node: "20.11.1", bash: true, manager: "apt-get", installs: "20.11.1" });
    expect(runShell(ensureRuntimeCommand(20, false), bin, { cwd: dir }).status).toBe(0);
    const result = runShell(ensureRuntimeCommand(22, false), bin, { cwd: dir });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      "needs Node.js >= 22 (supported lines: 20, 22, 24), the image has v20.11.1",
    );
  });

  it("fails clearly on a base with neither apt-get nor apk", () => {
    const { bin, dir } = baseImage({ node: "20.0.0" });
    const result = runShell(ensureRuntimeCommand(20, true), bin, { cwd: dir });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      "the base image lacks bash npm and has neither apt-get nor apk to install it",
    );
  });
});

describe("withActionServer", () => {
  it("npm: ensures the runtime, installs the pinned package, checks it is on the PATH", () => {
    const spec = fromRegistry("node:20-bookworm-slim")
      .withActionServer({ strategy: "npm", version: "1.2.3", registry: "http://127.0.0.1:4873" })
      .build();
    const lines = runLines(toDockerfile(spec));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(ensureRuntimeCommand(20, true));
    expect(lines[1]).toContain(
      "npm install -g --no-audit --no-fund --no-update-notifier --registry http://127.0.0.1:4873 @agent-runtime/action-server@1.2.3;",
    );
    expect(lines[2]).toBe("mkdir -p /workspace");

    const { bin, dir } = baseImage({ node: "20.0.0", bash: true });
    bin
      .script("npm", '#!/bin/sh\nprintf \'#!/bin/sh\\n\' > "$(dirname "$0")/agent-runtime-action-server"\n')
      .real("dirname", "chmod");
    expect(runShell(lines[1]!, bin, { cwd: dir }).status).toBe(1);
    bin.script(
      "npm",
      '#!/bin/sh\nd="$(dirname "$0")"; printf \'#!/bin/sh\\n\' > "$d/agent-runtime-action-server"; chmod 755 "$d/agent-runtime-action-server"\n',
    );
    expect(runShell(lines[1]!, bin, { cwd: dir })).toMatchObject({ status: 0, stderr: "" });
  });

  it("npm: a failed check says what is wrong", () => {
    const spec = fromRegistry("node:20").withActionServer({ strategy: "npm", version: "1.2.3" }).build();
    const { bin, dir } = baseImage({ node: "20.0.0", bash: true, npm: true });
    const result = runShell(runLines(toDockerfile(spec))[1]!, bin, { cwd: dir });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("agent-runtime-action-server is not on the PATH after npm install -g");
  });

  it("switches to root for the install and back to the spec's user", () => {
    const spec = fromRegistry("node:20").user("node").withActionServer({ strategy: "preinstalled" }).build();
    expect(toDockerfile(spec).split("\n").slice(2, -1)).toEqual([
      "USER node",
      "USER root",
      "RUN mkdir -p /workspace",
      "USER node",
    ]);
  });

  it("inline: writes the bundle and a launcher that need no npm", () => {
    const bundle = `#!/usr/bin/env node\nconsole.log(JSON.stringify(process.argv.slice(2)), "\u00e9'$(x)");\n`;
    const spec = fromRegistry("alpine:3.20")
      .withActionServer({ strategy: "inline", bundle, version: "0.1.0", workingDir: "/work" })
      .build();
    const lines = runLines(toDockerfile(spec));
    expect(lines[0]).toBe(ensureRuntimeCommand(20, false));
    expect(lines.at(-1)).toBe("mkdir -p /work");
    const dir = temp();
    // node inflates the bundle (the line before made sure it is there); it is linked in for that only.
    const bin = new FakeBin(dir).real("mkdir", "base64", "cat", "chmod", "rm", "wc", "node");
    for (const line of lines.slice(1, -1)) {
      const local = line
        .replaceAll("/opt/", `${dir}/opt/`)
        .replaceAll("/usr/local/bin", `${dir}/usr/local/bin`);
      expect(runShell(local, bin, { cwd: dir })).toMatchObject({ status: 0, stderr: "" });
    }
    expect(readFileSync(join(dir, INLINE_BUNDLE_PATH), "utf8")).toBe(bundle);
    expect(readFileSync(join(dir, INLINE_LAUNCHER_PATH), "utf8")).toBe(
      `#!/bin/sh\nexec node ${INLINE_BUNDLE_PATH} "$@"\n`,
    );
    const run = spawnSync(
      process.execPath,
      [join(dir, INLINE_BUNDLE_PATH), ...serverLaunch(spec).argv.slice(1)],
      {
        encoding: "utf8",
      },
    );
    expect(run.stdout).toBe(`["60000","--working-dir","/work","--host","0.0.0.0"] \u00e9'$(x)\n`);
  });

  it("inline: the bundle counts towards the inline limit", () => {
    const spec = fromRegistry("alpine:3.20")
      .withActionServer({ strategy: "inline", bundle: "x".repeat(5000) })
      .build();
    expect(() => toDockerfile(spec, { maxInlineBytes: 4096 })).toThrowError(
      expect.objectContaining({
        code: "LIMIT_EXCEEDED",
        issues: [expect.stringMatching(/^server\.install\.bundle: /)],
      }),
    );
  });
});

describe("serverLaunch", () => {
  it("gives our server's argv and port", () => {
    const spec = fromRegistry("node:20").withActionServer({ strategy: "npm", version: "0.1.0" }).build();
    expect(serverLaunch(spec)).toEqual({
      kind: "agent-runtime",
      argv: ["agent-runtime-action-server", "60000", "--working-dir", "/workspace", "--host", "0.0.0.0"],
      port: 60000,
      cwd: undefined,
      requiredEnv: ["SESSION_API_KEY"],
    });
    expect(serverLaunch(spec, { port: 8123 }).argv[1]).toBe("8123");
    const pre = fromRegistry("x")
      .withActionServer({ strategy: "preinstalled", command: "/opt/srv/bin/server" })
      .build();
    expect(serverLaunch(pre).argv[0]).toBe("/opt/srv/bin/server");
  });

  it("fails with FAILED_PRECONDITION when the spec has no server", () => {
    expect(() => serverLaunch(fromRegistry("debian:12").build())).toThrowError(
      expect.objectContaining({ code: "FAILED_PRECONDITION" }),
    );
    expect(() =>
      serverLaunch(fromRegistry("node:20").withActionServer({ strategy: "preinstalled" }).build(), {
        port: 0,
      }),
    ).toThrowError(
      expect.objectContaining({ code: "INVALID_ARGUMENT", issues: [expect.stringMatching(/^port: /)] }),
    );
  });
});

describe("the OpenHands preset", () => {
  it("runs a stock OpenHands runtime image unchanged, with their own start command", () => {
    const spec = openHandsRuntimeSpec({ image: "ghcr.io/openhands/runtime:0.62-nikolaik" });
    expect(spec.steps).toEqual([]);
    expect(toDockerfile(spec).split("\n").slice(1)).toEqual([
      "FROM ghcr.io/openhands/runtime:0.62-nikolaik",
      "",
    ]);
    expect(modalImagePlan(spec)).toEqual({ tag: "ghcr.io/openhands/runtime:0.62-nikolaik", layers: [] });
    expect(serverLaunch(spec)).toEqual({
      kind: "openhands",
      argv: [
        "/openhands/micromamba/bin/micromamba",
        "run",
        "-n",
        "openhands",
        "poetry",
        "run",
        "python",
        "-u",
        "-m",
        "openhands.runtime.action_execution_server",
        "60000",
        "--working-dir",
        "/workspace",
        "--plugins",
        "agent_skills",
        "jupyter",
        "--username",
        "openhands",
        "--user-id",
        "1000",
      ],
      port: 60000,
      cwd: "/openhands/code",
      requiredEnv: ["SESSION_API_KEY"],
    });
  });

  it("takes their options", () => {
    const spec = openHandsRuntimeSpec({
      image: "ghcr.io/openhands/runtime:0.62-nikolaik",
      plugins: [],
      username: "root",
      userId: 0,
      enableBrowser: false,
      port: 60001,
    });
    const { argv } = serverLaunch(spec);
    expect(argv.slice(10)).toEqual([
      "60001",
      "--working-dir",
      "/workspace",
      "--username",
      "root",
      "--user-id",
      "0",
      "--no-enable-browser",
    ]);
    expect(() => openHandsRuntimeSpec({ image: "x", plugins: ["Bad Name"] })).toThrowError(
      expect.objectContaining({ issues: [expect.stringMatching(/^server\.plugins\[0\]: /)] }),
    );
  });

  it("the start command does not change the image's tags", () => {
    const a = imageTags(openHandsRuntimeSpec({ image: "ghcr.io/openhands/runtime:0.62-nikolaik" }));
    const b = imageTags(
      openHandsRuntimeSpec({ image: "ghcr.io/openhands/runtime:0.62-nikolaik", port: 1234 }),
    );
    expect(a).toEqual(b);
    expect(parseImageSpec(openHandsRuntimeSpec({ image: "x:1" })).server?.kind).toBe("openhands");
  });
});

describe("readActionServerBundle", () => {
  it("reads the bin of an installed @agent-runtime/action-server", () => {
    const dir = temp();
    const pkg = join(dir, "node_modules", "@agent-runtime", "action-server");
    mkdirSync(join(pkg, "dist"), { recursive: true });
    writeFileSync(
      join(pkg, "package.json"),
      JSON.stringify({
        name: "@agent-runtime/action-server",
        version: "0.4.2",
        bin: { "agent-runtime-action-server": "./dist/bin.cjs" },
      }),
    );
    writeFileSync(join(pkg, "dist", "bin.cjs"), "console.log('server')\n");
    expect(readActionServerBundle(dir)).toEqual({
      version: "0.4.2",
      bundle: "console.log('server')\n",
      path: join(pkg, "dist", "bin.cjs"),
    });
  });

  it("says how to fix a missing package", () => {
    expect(() => readActionServerBundle(temp())).toThrowError(
      expect.objectContaining({
        code: "NOT_FOUND",
        message: expect.stringContaining("npm install @agent-runtime/action-server"),
      }),
    );
  });
});
