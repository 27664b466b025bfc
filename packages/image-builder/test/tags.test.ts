import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  fromDockerfile,
  fromRegistry,
  hash16,
  type ImageSpecInput,
  imageTags,
  resolveBuildPlan,
  toDockerfile,
} from "../src/index.js";

const fixture: ImageSpecInput = {
  base: { kind: "registry", image: "python:3.12-slim" },
  steps: [
    { kind: "apt-install", packages: ["git", "ripgrep"] },
    { kind: "pip-install", packages: ["requests==2.32.3"] },
    { kind: "env", vars: { LANG: "C.UTF-8", PIP_NO_CACHE_DIR: "1" } },
  ],
  server: { kind: "agent-runtime", install: { strategy: "npm", version: "0.1.0" } },
};

describe("hash16", () => {
  it("matches OpenHands' truncate_hash(md5) (values computed with their Python code)", () => {
    expect(hash16("")).toBe("uc3mgirxygs0uf85");
    expect(hash16("hello")).toBe("ygfx1uywrhuanrle");
    expect(hash16("python:3.12-slim")).toBe("nxqn7v78xsgakmxj");
    expect(hash16("\u00fcn\u00efcode \u2713")).toBe("ia3xp16fsw20cul1");
  });
});

describe("imageTags", () => {
  it("are fixed values: the same on every machine, in every time zone and locale", () => {
    // Golden values, computed independently in Python (json.dumps(sort_keys=True, separators=(",", ":")) of
    // {recipe, base, steps} and {recipe, server identity}, then OpenHands' truncate_hash of the md5). A change
    // here means every existing image tag stops matching: bump RECIPE_VERSION. (The source hash changed when
    // the default minNodeMajor went from 18 to 20: the server identity includes the Node floor.)
    expect(imageTags(fixture)).toEqual({
      lockHash: "kiy8zr5w4n5c646x",
      sourceHash: "s0xeqf08sva4osjx",
      lockTag: "ar_v1_kiy8zr5w4n5c646x",
      sourceTag: "ar_v1_kiy8zr5w4n5c646x_s0xeqf08sva4osjx",
      versionedTag: "ar_v1_python_t_3.12-slim",
    });
  });

  it("do not depend on key order, written defaults, YAML vs JSON or the builder", () => {
    const reordered = JSON.parse(
      '{"server":{"install":{"version":"0.1.0","strategy":"npm"},"kind":"agent-runtime","port":60000},' +
        '"steps":[{"packages":["git","ripgrep"],"kind":"apt-install","noInstallRecommends":true},' +
        '{"kind":"pip-install","packages":["requests==2.32.3"]},{"vars":{"PIP_NO_CACHE_DIR":"1","LANG":"C.UTF-8"},"kind":"env"}],' +
        '"base":{"image":"python:3.12-slim","kind":"registry"},"specVersion":1}',
    );
    const yaml = parseYaml(`
base: { kind: registry, image: "python:3.12-slim" }
steps:
  - { kind: apt-install, packages: [git, ripgrep] }
  - { kind: pip-install, packages: ["requests==2.32.3"] }
  - { kind: env, vars: { PIP_NO_CACHE_DIR: "1", LANG: C.UTF-8 } }
server: { kind: agent-runtime, install: { strategy: npm, version: 0.1.0 } }
`);
    const built = fromRegistry("python:3.12-slim")
      .aptInstall(["git", "ripgrep"])
      .pipInstall(["requests==2.32.3"])
      .env({ PIP_NO_CACHE_DIR: "1", LANG: "C.UTF-8" })
      .withActionServer({ strategy: "npm", version: "0.1.0" })
      .build();
    const expected = imageTags(fixture);
    for (const spec of [reordered, yaml, built]) expect(imageTags(spec)).toEqual(expected);
  });

  it("split what changes: steps change the lock tag, the server only the source tag, the base everything", () => {
    const base = imageTags(fixture);
    const newStep = imageTags({
      ...fixture,
      steps: [...(fixture.steps ?? []), { kind: "run", command: "true" }],
    });
    expect(newStep.lockTag).not.toBe(base.lockTag);
    expect(newStep.versionedTag).toBe(base.versionedTag);
    const newServer = imageTags({
      ...fixture,
      server: { kind: "agent-runtime", install: { strategy: "npm", version: "0.1.1" } },
    });
    expect(newServer.lockTag).toBe(base.lockTag);
    expect(newServer.sourceTag).not.toBe(base.sourceTag);
    const newPort = imageTags({
      ...fixture,
      server: { kind: "agent-runtime", install: { strategy: "npm", version: "0.1.0" }, port: 9000 },
    });
    expect(newPort).toEqual(base);
    const newBase = imageTags({ ...fixture, base: { kind: "registry", image: "python:3.13-slim" } });
    expect(newBase.lockTag).not.toBe(base.lockTag);
    expect(newBase.versionedTag).toBe("ar_v1_python_t_3.13-slim");
  });

  it("make tag-safe versioned tags from any base", () => {
    const digest = `ghcr.io/Org/Runtime@sha256:${"a".repeat(64)}`;
    const tag = imageTags(fromRegistry(digest).build()).versionedTag;
    expect(tag).toMatch(/^[a-z0-9_][a-z0-9_.-]{0,127}$/);
    expect(tag.length).toBe("ar_v1_".length + 96);
    expect(imageTags(fromDockerfile("FROM alpine:3.20\n").build()).versionedTag).toBe(
      `ar_v1_dockerfile_${hash16("FROM alpine:3.20\n")}`,
    );
  });

  it("identify an inline bundle by its content", () => {
    const one = fromRegistry("node:20")
      .withActionServer({ strategy: "inline", bundle: "a", version: "1" })
      .build();
    const sameContent = fromRegistry("node:20")
      .withActionServer({ strategy: "inline", bundle: "a", version: "2" })
      .build();
    const other = fromRegistry("node:20")
      .withActionServer({ strategy: "inline", bundle: "b", version: "1" })
      .build();
    expect(imageTags(sameContent).sourceTag).toBe(imageTags(one).sourceTag);
    expect(imageTags(other).sourceTag).not.toBe(imageTags(one).sourceTag);
  });
});

describe("resolveBuildPlan", () => {
  const tags = imageTags(fixture);

  it("reuses the exact image when its source tag exists (bare or with the repository)", () => {
    for (const existing of [[tags.sourceTag], [`agent-runtime:${tags.sourceTag}`]]) {
      expect(resolveBuildPlan(fixture, existing)).toEqual({
        kind: "reuse-exact",
        image: `agent-runtime:${tags.sourceTag}`,
        from: null,
        tagsToApply: [],
        dockerfile: null,
        tags,
      });
    }
    // A tag of another repository is another image.
    expect(resolveBuildPlan(fixture, [`other/repo:${tags.sourceTag}`]).kind).toBe("from-scratch");
  });

  it("builds only the server install on the lock image", () => {
    const plan = resolveBuildPlan(fixture, [tags.versionedTag, `ghcr.io/acme/rt:${tags.lockTag}`], {
      repository: "ghcr.io/acme/rt",
    });
    expect(plan.kind).toBe("build-from-lock");
    expect(plan.from).toBe(`ghcr.io/acme/rt:${tags.lockTag}`);
    expect(plan.tagsToApply).toEqual([`ghcr.io/acme/rt:${tags.sourceTag}`]);
    const lines = plan.dockerfile!.trimEnd().split("\n");
    expect(lines[1]).toBe(`FROM ghcr.io/acme/rt:${tags.lockTag}`);
    expect(lines.some((l) => l.includes("apt-get install -y --no-install-recommends git"))).toBe(false);
    expect(lines.at(-2)).toContain("npm install -g");
  });

  it("re-runs the steps on the versioned image, and never re-applies the versioned tag", () => {
    const plan = resolveBuildPlan(fixture, [`  ${tags.versionedTag}  `, ""]);
    expect(plan.kind).toBe("build-from-versioned");
    expect(plan.from).toBe(`agent-runtime:${tags.versionedTag}`);
    expect(plan.tagsToApply).toEqual([`agent-runtime:${tags.sourceTag}`, `agent-runtime:${tags.lockTag}`]);
    expect(plan.dockerfile).toBe(
      toDockerfile(fixture).replace("FROM python:3.12-slim", `FROM agent-runtime:${tags.versionedTag}`),
    );
    expect(resolveBuildPlan(fixture, [tags.versionedTag], { useVersioned: false }).kind).toBe("from-scratch");
  });

  it("builds from scratch otherwise, or when forced, applying every tag", () => {
    for (const plan of [
      resolveBuildPlan(fixture, []),
      resolveBuildPlan(fixture, [tags.sourceTag, tags.lockTag], { forceRebuild: true }),
    ]) {
      expect(plan.kind).toBe("from-scratch");
      expect(plan.from).toBe("python:3.12-slim");
      expect(plan.dockerfile).toBe(toDockerfile(fixture));
      expect(plan.tagsToApply).toEqual([
        `agent-runtime:${tags.sourceTag}`,
        `agent-runtime:${tags.lockTag}`,
        `agent-runtime:${tags.versionedTag}`,
      ]);
    }
  });

  it("rejects bad options with paths", () => {
    expect(() => resolveBuildPlan(fixture, [], { repository: "Bad Repo" })).toThrowError(
      expect.objectContaining({ code: "INVALID_ARGUMENT", issues: [expect.stringMatching(/^repository: /)] }),
    );
  });
});
