import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { runCli } from "../src/cli.js";
import { type imageTags, toDockerfile } from "../src/index.js";
import { tempDir } from "./helpers.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function cli(argv: string[], files: Record<string, string> = {}, stdin = "") {
  const { dir, cleanup } = tempDir("image-builder-cli-");
  cleanups.push(cleanup);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    cwd: dir,
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    readStdin: async () => stdin,
  });
  return { code, stdout, stderr, dir };
}

const specYaml = `
base: { kind: registry, image: "python:3.12-slim" }
steps:
  - kind: apt-install
    packages: [git]
  - kind: copy-inline
    path: /etc/motd
    contentFile: motd.txt
server:
  kind: agent-runtime
  install: { strategy: npm, version: 0.1.0 }
`;

describe("agent-runtime-image", () => {
  it("validate: a summary on success", async () => {
    const r = await cli(["validate", "spec.yaml"], { "spec.yaml": specYaml, "motd.txt": "hi\n" });
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toBe("ok: spec.yaml is a valid image spec (2 steps, server: npm)\n");
  });

  it("validate: errors point into the spec and exit 1", async () => {
    const bad = JSON.stringify({
      base: { kind: "registry", image: "debian:12" },
      steps: [
        { kind: "apt-install", packages: ["git"] },
        { kind: "run", command: "true" },
        { kind: "env", vars: { A: "1" } },
        { kind: "pip-install", packages: ["--pre"] },
      ],
    });
    const r = await cli(["validate", "spec.json"], { "spec.json": bad });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      "agent-runtime-image: spec.json: Invalid image spec:\n" +
        "  steps[3].packages[0]: must not start with '-' (it would be read as an option); pass options through a run step\n",
    );
  });

  it("validate: also checks that the spec renders (inline limit)", async () => {
    const spec = JSON.stringify({
      base: { kind: "registry", image: "debian:12" },
      steps: [{ kind: "copy-inline", path: "/a", content: "x".repeat(100) }],
    });
    const r = await cli(["validate", "s.json", "--max-inline-bytes", "10"], { "s.json": spec });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "steps[0].content: inline content reaches 100 bytes, over the limit of 10 bytes",
    );
  });

  it("dockerfile: prints the Dockerfile, loading contentFile relative to the spec", async () => {
    const r = await cli(["dockerfile", "spec.yaml"], { "spec.yaml": specYaml, "motd.txt": "hi\n" });
    expect(r.code).toBe(0);
    const resolved = parseYaml(specYaml) as { steps: Record<string, unknown>[] };
    resolved.steps[1] = {
      kind: "copy-inline",
      path: "/etc/motd",
      content: Buffer.from("hi\n").toString("base64"),
      encoding: "base64",
    };
    expect(r.stdout).toBe(toDockerfile(resolved as never));
    expect(r.stdout).toContain("printf '%s' 'aGkK' | base64 -d > /etc/motd");
  });

  it("dockerfile: reads the spec from standard input with -", async () => {
    const r = await cli(["dockerfile", "-"], {}, '{"base":{"kind":"registry","image":"alpine:3.20"}}');
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[1]).toBe("FROM alpine:3.20");
  });

  it("a missing file named by the spec is an error with its path", async () => {
    const r = await cli(["dockerfile", "spec.yaml"], { "spec.yaml": specYaml });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/steps\[1\]\.contentFile: cannot read motd\.txt: ENOENT/);
  });

  it("hash: prints the tags as JSON", async () => {
    const r = await cli(["hash", "spec.yaml"], { "spec.yaml": specYaml, "motd.txt": "hi\n" });
    expect(r.code).toBe(0);
    const tags = JSON.parse(r.stdout) as ReturnType<typeof imageTags>;
    expect(tags.sourceTag).toMatch(/^ar_v1_[0-9a-z]{16}_[0-9a-z]{16}$/);
    expect(tags.versionedTag).toBe("ar_v1_python_t_3.12-slim");
  });

  it("canonical and server print the canonical JSON and the start command", async () => {
    const files = { "spec.yaml": specYaml, "motd.txt": "hi\n" };
    const canonical = await cli(["canonical", "spec.yaml"], files);
    expect(canonical.stdout).toMatch(/^\{"base":\{"image":"python:3\.12-slim","kind":"registry"\},"server":/);
    const server = await cli(["server", "spec.yaml"], files);
    expect(JSON.parse(server.stdout)).toMatchObject({
      argv: ["agent-runtime-action-server", "60000", "--working-dir", "/workspace", "--host", "0.0.0.0"],
    });
  });

  it("plan: uses the tags file (comments and blank lines ignored)", async () => {
    const files = { "spec.yaml": specYaml, "motd.txt": "hi\n" };
    const { stdout } = await cli(["hash", "spec.yaml"], files);
    const tags = JSON.parse(stdout) as ReturnType<typeof imageTags>;
    const r = await cli(["plan", "spec.yaml", "--existing", "tags.txt", "--repository", "ghcr.io/acme/rt"], {
      ...files,
      "tags.txt": `# pushed yesterday\n\nghcr.io/acme/rt:${tags.lockTag}\n`,
    });
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as { kind: string; from: string; dockerfile: string };
    expect(plan.kind).toBe("build-from-lock");
    expect(plan.from).toBe(`ghcr.io/acme/rt:${tags.lockTag}`);
    const forced = await cli(["plan", "spec.yaml", "--existing", "tags.txt", "--force"], {
      ...files,
      "tags.txt": "",
    });
    expect(JSON.parse(forced.stdout).kind).toBe("from-scratch");
  });

  it("usage errors exit 2 and point to --help", async () => {
    for (const argv of [
      [],
      ["bogus", "x"],
      ["dockerfile"],
      ["plan", "s.yaml"],
      ["hash", "s.yaml", "--bogus"],
      ["hash", "s.yaml", "--force"],
    ]) {
      const r = await cli(argv, { "s.yaml": "base: { kind: registry, image: debian }" });
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.stderr).toContain("Run agent-runtime-image --help for usage.");
    }
    const help = await cli(["--help"]);
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toContain("plan <spec> --existing <tags.txt>");
    expect((await cli(["--version"])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it("unreadable or malformed spec files exit 1 with the reason", async () => {
    const missing = await cli(["validate", "nope.yaml"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read the spec .*nope\.yaml: ENOENT/);
    const malformed = await cli(["validate", "s.json"], { "s.json": "{ not json" });
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toMatch(/s\.json is not valid JSON or YAML/);
  });
});
