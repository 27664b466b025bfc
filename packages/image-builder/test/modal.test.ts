import { Image, InvalidError, ModalClient, type Secret } from "modal";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import {
  fromDockerfile,
  fromRegistry,
  type ImageSpec,
  INLINE_CHUNK_BASE64_CHARS,
  toDockerfile,
} from "../src/index.js";
import { type ModalClientLike, modalImagePlan, toModalImage } from "../src/modal.js";

/**
 * A tiny stand-in that implements the structural client type and records what toModalImage asks of it
 * (the real SDK keeps its layers private, so the exact commands are checked here).
 */
class RecordingImage {
  constructor(
    readonly tag: string,
    readonly secret: string | undefined,
    readonly layers: readonly string[][] = [],
  ) {}
  dockerfileCommands(commands: string[]): RecordingImage {
    return new RecordingImage(this.tag, this.secret, [...this.layers, commands]);
  }
}
const recordingClient: ModalClientLike<RecordingImage, string> = {
  images: { fromRegistry: (tag, secret) => new RecordingImage(tag, secret) },
};

const spec: ImageSpec = fromRegistry("python:3.12-slim")
  .aptInstall(["git"])
  .copyInline("/etc/app.conf", "a = 1\n")
  .withActionServer({ strategy: "npm", version: "0.1.0" })
  .build();

describe("toModalImage with the real modal@0.11.1 SDK (no network)", () => {
  let client: ModalClient;
  const saved = { ...process.env };
  beforeAll(() => {
    for (const key of Object.keys(process.env)) if (key.startsWith("MODAL_")) delete process.env[key];
    process.env.MODAL_CONFIG_PATH = "/nonexistent/modal.toml";
    client = new ModalClient({ tokenId: "ak-test", tokenSecret: "as-test" });
  });
  afterAll(() => {
    client.close();
    process.env = saved;
  });

  it("returns the SDK's own Image type and object, with our commands passing its validation", () => {
    const image = toModalImage(spec, client);
    expectTypeOf(image).toEqualTypeOf<Image>();
    expect(image).toBeInstanceOf(Image);
    expect(image.imageId).toBe(""); // built lazily by Modal, on first use or image.build(app)
  });

  it("is the SDK that rejects local COPY: inline files never use it", () => {
    expect(() => client.images.fromRegistry("alpine").dockerfileCommands(["COPY a.txt /a.txt"])).toThrow(
      InvalidError,
    );
    const big = fromRegistry("alpine:3.20").copyInline("/big", "z".repeat(INLINE_CHUNK_BASE64_CHARS)).build();
    expect(toModalImage(big, client)).toBeInstanceOf(Image);
  });

  it("passes a registry secret through, typed as the SDK's Secret", () => {
    expectTypeOf(toModalImage<Image, Secret>)
      .parameter(2)
      .toEqualTypeOf<import("../src/modal.js").ModalImageOptions<Secret> | undefined>();
    // The SDK insists on a real Secret object; anything else is a TypeError from the SDK itself.
    expect(() => toModalImage(spec, client, { registrySecret: {} as Secret })).toThrow(
      /secret must be a reference/,
    );
  });
});

describe("toModalImage: the commands Modal receives", () => {
  it("one layer for the steps, one for the server install, on fromRegistry(base)", () => {
    const image = toModalImage(spec, recordingClient, { registrySecret: "registry-creds" });
    expect(image.tag).toBe("python:3.12-slim");
    expect(image.secret).toBe("registry-creds");
    const dockerfileLines = toDockerfile(spec).trimEnd().split("\n").slice(2);
    expect(image.layers).toHaveLength(2);
    expect(image.layers.flat()).toEqual(dockerfileLines);
    expect(image.layers[1]![0]).toMatch(/^RUN set -e; node_ok\(\)/);
    expect(image.layers.flat().some((c) => /^\s*COPY\s/i.test(c))).toBe(false);
    expect(toModalImage(fromRegistry("debian:12").build(), recordingClient).layers).toEqual([]);
  });

  it("a single-stage Dockerfile base becomes fromRegistry(FROM) plus its instructions", () => {
    const base = [
      "# syntax=docker/dockerfile:1",
      "FROM node:20-bookworm-slim AS app",
      "ARG V=1",
      "# a comment",
      "RUN apt-get update \\",
      "  # comment inside a continuation",
      "  && apt-get install -y jq",
      "COPY --from=busybox:1.36 /bin/busybox /bin/busybox",
      "ADD https://example.org/x.tgz /opt/",
      "",
    ].join("\n");
    const image = toModalImage(fromDockerfile(base).env({ A: "1" }).build(), recordingClient);
    expect(image.tag).toBe("node:20-bookworm-slim");
    expect(image.layers).toEqual([
      [
        "ARG V=1",
        "RUN apt-get update   && apt-get install -y jq",
        "COPY --from=busybox:1.36 /bin/busybox /bin/busybox",
        "ADD https://example.org/x.tgz /opt/",
      ],
      ['ENV A="1"'],
    ]);
  });

  it("says clearly which Dockerfile bases Modal cannot build", () => {
    const cases: [string, RegExp][] = [
      ["FROM a\nFROM b\n", /line 2\): multi-stage Dockerfiles are not supported on Modal/],
      ["ARG BASE=a\nFROM $BASE\n", /line 1\): ARG before FROM cannot be expressed/],
      ["FROM --platform=linux/amd64 a\n", /FROM --platform=linux\/amd64 is not supported/],
      ["FROM a\nCOPY app /app\n", /line 2\): COPY from the local build context is rejected by Modal/],
      ["FROM a\nCOPY --chown=1 --from=b /x /x\n", /only COPY --from=<image> as the first flag/],
      ["FROM a\nADD app.tgz /app\n", /ADD from the local build context/],
      ["FROM a\nRUN <<EOF\necho hi\nEOF\n", /heredocs/],
    ];
    for (const [content, message] of cases) {
      expect(() => modalImagePlan(fromDockerfile(content).build())).toThrowError(
        expect.objectContaining({ code: "UNSUPPORTED", message: expect.stringMatching(message) }),
      );
      // The same base is fine for the Dockerfile target.
      expect(toDockerfile(fromDockerfile(content).build())).toContain(content.split("\n")[0]!);
    }
  });

  it("keeps the inline limit on Modal too", () => {
    const big = fromRegistry("alpine:3.20").copyInline("/big", "z".repeat(10_000)).build();
    expect(() => toModalImage(big, recordingClient, { maxInlineBytes: 1000 })).toThrowError(
      expect.objectContaining({
        code: "LIMIT_EXCEEDED",
        issues: [expect.stringMatching(/^steps\[0\]\.content: /)],
      }),
    );
  });
});
