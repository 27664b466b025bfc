import { imageTags } from "@agent-runtime/image-builder";
import { describe, expect, it } from "vitest";
import { resolveImage } from "../src/image.js";
import { DEFAULT_BASE_IMAGE } from "../src/index.js";
import { ModalRuntimeOptionsSchema } from "../src/options.js";

describe("the default image", () => {
  const image = resolveImage(ModalRuntimeOptionsSchema.parse({}));

  it("is Node.js 24 on Debian bookworm, with the bundled server written in and a Node floor of 20", () => {
    expect(DEFAULT_BASE_IMAGE).toBe("node:24-bookworm-slim");
    expect(image.spec.base).toEqual({ kind: "registry", image: "node:24-bookworm-slim" });
    expect(image.spec.server).toMatchObject({ kind: "agent-runtime", install: { strategy: "inline" } });
    expect(image.spec.server).toMatchObject({ minNodeMajor: 20 });
  });

  it("has fixed base tags (golden values computed independently in Python, as in image-builder's tags test)", () => {
    // hash16 of {"base":{"image":"node:24-bookworm-slim","kind":"registry"},"recipe":1,"steps":[]}; the
    // source tag also hashes the action-server bundle, so it changes with every server change.
    const tags = imageTags(image.spec);
    expect(tags.lockTag).toBe("ar_v1_y20ecvhhd2mbri8g");
    expect(tags.versionedTag).toBe("ar_v1_node_t_24-bookworm-slim");
    expect(tags.sourceTag.startsWith("ar_v1_y20ecvhhd2mbri8g_")).toBe(true);
  });
});
