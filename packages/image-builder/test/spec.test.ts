import { describe, expect, expectTypeOf, it } from "vitest";
import {
  canonicalJson,
  fromDockerfile,
  fromRegistry,
  ImageBuilderError,
  type ImageRecipe,
  type ImageSpec,
  type ImageSpecBuilder,
  imageRecipe,
  parseImageSpec,
} from "../src/index.js";

function issuesOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ImageBuilderError);
    expect((err as ImageBuilderError).code).toBe("INVALID_ARGUMENT");
    return (err as ImageBuilderError).issues;
  }
  throw new Error("expected an ImageBuilderError");
}

describe("ImageSpec validation", () => {
  it("reports every problem at once, with paths into the spec", () => {
    const issues = issuesOf(() =>
      parseImageSpec({
        base: { kind: "registry", image: "python:3.12 slim" },
        steps: [
          { kind: "apt-install", packages: ["git"] },
          { kind: "apt-install", packages: [] },
          { kind: "pip-install", packages: ["ok", "--index-url=http://evil"] },
          { kind: "npm-install", packages: ["a", "b\nc"] },
          { kind: "run", command: "echo a\necho b" },
          { kind: "run", command: "echo a \\" },
          { kind: "env", vars: { "1BAD": "x", GOOD: "line\nbreak" } },
          { kind: "workdir", path: "relative/dir" },
          { kind: "user", user: "root; rm" },
          { kind: "copy-inline", path: "/etc/x/", content: "", mode: 644 },
          { kind: "apt-install", pakages: ["typo"] },
          { kind: "teleport" },
        ],
      }),
    );
    const paths = issues.map((issue) => issue.split(": ")[0]);
    expect(paths).toEqual(
      expect.arrayContaining([
        "base.image",
        "steps[1].packages",
        "steps[2].packages[1]",
        "steps[3].packages[1]",
        "steps[4].command",
        "steps[5].command",
        "steps[6].vars.1BAD",
        "steps[6].vars.GOOD",
        "steps[7].path",
        "steps[8].user",
        "steps[9].path",
        "steps[9].mode",
        "steps[10]",
        "steps[11].kind",
      ]),
    );
    expect(issues.find((i) => i.startsWith("steps[2].packages[1]"))).toContain("must not start with '-'");
    expect(issues).toContain('steps[10]: Unrecognized key: "pakages"');
    expect(issues).toContain("steps[10].packages: is required (array)");
    expect(issues.find((i) => i.startsWith("steps[9].mode"))).toContain('"0644"');
  });

  it("rejects a Dockerfile base that cannot be extended safely", () => {
    const issues = issuesOf(() =>
      parseImageSpec({ base: { kind: "dockerfile", content: "# escape=`\nFROM alpine\nRUN echo a \\\n" } }),
    );
    expect(issues.join("\n")).toMatch(/base\.content: the escape parser directive/);
    expect(issues.join("\n")).toMatch(/base\.content: ends inside a line continuation/);
    expect(issuesOf(() => parseImageSpec({ base: { kind: "dockerfile", content: "RUN true\n" } }))).toEqual([
      "base.content: has no FROM instruction; a Dockerfile base must start from an image",
    ]);
  });

  it("fills in defaults, and the canonical JSON parses back to the same spec", () => {
    const spec = parseImageSpec({
      base: { kind: "registry", image: "python:3.12-slim" },
      steps: [
        { kind: "apt-install", packages: ["git"] },
        { kind: "copy-inline", path: "/a/b.txt", content: "x", mode: "755" },
        { kind: "env", vars: { B: "2", A: "1" } },
      ],
      server: { kind: "agent-runtime", install: { strategy: "npm", version: "0.1.0" } },
    });
    expect(spec.specVersion).toBe(1);
    expect(spec.steps[0]).toEqual({ kind: "apt-install", packages: ["git"], noInstallRecommends: true });
    expect(spec.steps[1]).toMatchObject({ mode: "0755", encoding: "utf8" });
    expect(spec.server).toEqual({
      kind: "agent-runtime",
      install: { strategy: "npm", version: "0.1.0", package: "@agent-runtime/action-server" },
      port: 60000,
      workingDir: "/workspace",
      host: "0.0.0.0",
      minNodeMajor: 20,
    });
    const text = canonicalJson(spec);
    expect(parseImageSpec(JSON.parse(text))).toEqual(spec);
    expect(canonicalJson(JSON.parse(text))).toBe(text);
    expect(text.startsWith('{"base":{"image":"python:3.12-slim","kind":"registry"},"server":')).toBe(true);
  });

  it("gives the same canonical JSON whatever the key order and whether defaults are written", () => {
    const a = canonicalJson({
      steps: [{ packages: ["git"], kind: "apt-install" }],
      base: { image: "debian:12", kind: "registry" },
    });
    const b = canonicalJson({
      specVersion: 1,
      base: { kind: "registry", image: "debian:12" },
      steps: [{ kind: "apt-install", noInstallRecommends: true, packages: ["git"] }],
    });
    expect(a).toBe(b);
  });
});

describe("the fluent builder", () => {
  it("builds a spec step by step, immutably", () => {
    const base = fromRegistry("python:3.12-slim").aptInstall(["git"]);
    const withPip = base.pipInstall(["requests==2.32.3"], { indexUrl: "https://pypi.org/simple" });
    const spec = withPip
      .npmInstall(["typescript@5.9.3"])
      .run("echo hi")
      .run(["/bin/echo", "exec form"])
      .env({ LANG: "C.UTF-8" })
      .workdir("/srv")
      .user("1000:1000")
      .copyInline("/srv/hello.txt", "hi\n", "0600")
      .withActionServer({ strategy: "npm", version: "0.1.0", port: 8000 })
      .build();
    expect(base.steps).toHaveLength(1);
    expect(withPip.steps).toHaveLength(2);
    expect(spec.steps.map((s) => s.kind)).toEqual([
      "apt-install",
      "pip-install",
      "npm-install",
      "run",
      "run",
      "env",
      "workdir",
      "user",
      "copy-inline",
    ]);
    expect(spec.server).toMatchObject({ kind: "agent-runtime", port: 8000, install: { strategy: "npm" } });
  });

  it("types stages so that a spec without a base cannot be finalised", () => {
    const recipe = imageRecipe().aptInstall(["git"]).pipInstall(["requests"]);
    expectTypeOf(recipe).toEqualTypeOf<ImageRecipe>();
    expectTypeOf(recipe).not.toHaveProperty("build");
    expectTypeOf(recipe).not.toHaveProperty("withActionServer");
    // @ts-expect-error a recipe has no base, so it has no build()
    expect(() => recipe.build()).toThrow(TypeError);
    const builder = recipe.fromRegistry("debian:12");
    expectTypeOf(builder).toEqualTypeOf<ImageSpecBuilder>();
    expectTypeOf(builder.build()).toEqualTypeOf<ImageSpec>();
    expect(builder.build().steps).toHaveLength(2);
    expect(recipe.fromDockerfile("FROM alpine:3.20\n").build().base).toEqual({
      kind: "dockerfile",
      content: "FROM alpine:3.20\n",
    });
  });

  it("reports builder mistakes at build() with paths", () => {
    const issues = issuesOf(() =>
      fromDockerfile("FROM alpine")
        .aptInstall(["ok"])
        .aptInstall(["ok", "-o=APT::Get::AllowUnauthenticated=1"])
        .withActionServer({ strategy: "npm", version: "^1.0.0" })
        .build(),
    );
    expect(issues).toEqual([
      "steps[1].packages[1]: must not start with '-' (it would be read as an option); pass options through a run step",
      "server.install.version: must be an exact version like 1.2.3 (no ranges or tags: the image must be reproducible)",
    ]);
  });

  it("accepts a Node.js floor of 20 or higher only (the supported lines are 20, 22 and 24)", () => {
    const withFloor = (minNodeMajor: number) =>
      fromRegistry("debian:bookworm-slim")
        .withActionServer({ strategy: "preinstalled", minNodeMajor })
        .build();
    expect(withFloor(22).server).toMatchObject({ minNodeMajor: 22 });
    expect(issuesOf(() => withFloor(18))).toEqual([
      "server.minNodeMajor: must be at least 20 (the action-server runs on Node.js 20, 22 and 24)",
    ]);
  });
});
