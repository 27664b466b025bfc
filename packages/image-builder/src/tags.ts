import { createHash } from "node:crypto";
import { serverImageIdentity } from "./action-server.js";
import { stableStringify } from "./canonical-json.js";
import { parseOrThrow } from "./errors.js";
import { type BuildPlanOptions, BuildPlanOptionsSchema } from "./options.js";
import { dockerfileText, renderResolved } from "./render.js";
import { type ImageSpec, type ImageSpecInput, parseImageSpec } from "./spec.js";

/**
 * The recipe version in every tag (`ar_v1_...`). It changes when the same spec would render to a different
 * image, so old tags stop matching.
 */
export const RECIPE_VERSION = 1;

const TAG_PREFIX = `ar_v${RECIPE_VERSION}_`;
const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/**
 * OpenHands' short hash: the md5 of `text` in base 36, least significant digit first, at most 16 characters
 * (`truncate_hash` in their runtime_build.py).
 */
export function hash16(text: string): string {
  let value = BigInt(`0x${createHash("md5").update(text, "utf8").digest("hex")}`);
  let out = "";
  while (value > 0n && out.length < 16) {
    out += ALPHABET[Number(value % 36n)];
    value /= 36n;
  }
  return out;
}

/** The content-hash tags of a spec, in the spirit of OpenHands' runtime image tags. */
export interface ImageTags {
  /** Hash of the base and the build steps (canonical JSON). */
  lockHash: string;
  /** Hash of what the action-server install puts in the image. */
  sourceHash: string;
  /** `ar_v1_<lockHash>`: an image with the base and every build step. */
  lockTag: string;
  /** `<lockTag>_<sourceHash>`: the complete image. */
  sourceTag: string;
  /** `ar_v1_<base>`: any earlier image built from the same base (the base name, made tag-safe). */
  versionedTag: string;
}

function versionedSuffix(spec: ImageSpec): string {
  if (spec.base.kind === "dockerfile") return `dockerfile_${hash16(spec.base.content)}`;
  return spec.base.image
    .replace(/\//g, "_s_")
    .replace(/:/g, "_t_")
    .replace(/@/g, "_a_")
    .toLowerCase()
    .slice(-96);
}

/** @internal Tags of a validated spec. */
export function tagsOf(spec: ImageSpec): ImageTags {
  const lockHash = hash16(stableStringify({ recipe: RECIPE_VERSION, base: spec.base, steps: spec.steps }));
  const sourceHash = hash16(stableStringify({ recipe: RECIPE_VERSION, server: serverImageIdentity(spec) }));
  const lockTag = `${TAG_PREFIX}${lockHash}`;
  return {
    lockHash,
    sourceHash,
    lockTag,
    sourceTag: `${lockTag}_${sourceHash}`,
    versionedTag: `${TAG_PREFIX}${versionedSuffix(spec)}`,
  };
}

/**
 * The content-hash tags of a spec. They depend only on the spec's content (canonical JSON: key order,
 * defaults written or left out, machine, time and locale make no difference) and on {@link RECIPE_VERSION}.
 */
export function imageTags(spec: ImageSpecInput | ImageSpec): ImageTags {
  return tagsOf(parseImageSpec(spec));
}

/** How to get the spec's image, given the tags that already exist. */
export type BuildPlanKind = "reuse-exact" | "build-from-lock" | "build-from-versioned" | "from-scratch";

/** The result of {@link resolveBuildPlan}. */
export interface BuildPlan {
  /**
   * `reuse-exact`: the complete image exists, build nothing. `build-from-lock`: an image with the same base and
   * steps exists, only install the action server on it. `build-from-versioned`: an image from the same base
   * exists, re-run the steps and the install on it. `from-scratch`: build everything.
   */
  kind: BuildPlanKind;
  /** The image to run: `<repository>:<sourceTag>`. */
  image: string;
  /** The image the build starts from (`null` for reuse-exact, and for a Dockerfile base built from scratch). */
  from: string | null;
  /** Full references to tag the build result with (empty for reuse-exact). */
  tagsToApply: string[];
  /** The Dockerfile to build, or `null` for reuse-exact. */
  dockerfile: string | null;
  /** The spec's tags. */
  tags: ImageTags;
}

function tagMatcher(existing: Iterable<string>, repository: string): (tag: string) => boolean {
  const set = new Set<string>();
  for (const raw of existing) {
    const entry = raw.trim();
    if (entry === "") continue;
    set.add(entry);
  }
  return (tag) => set.has(tag) || set.has(`${repository}:${tag}`);
}

/**
 * Decides how to get the spec's image from the tags that exist (OpenHands' build decision): reuse the
 * complete image; else build on the lock image (only the server install); else on the versioned image (steps
 * and install again); else from scratch. Existing tags may be bare (`ar_v1_...`) or `<repository>:<tag>`.
 *
 * @example
 * ```ts
 * const plan = resolveBuildPlan(spec, await listTags(), { repository: "ghcr.io/acme/runtime" });
 * if (plan.dockerfile) await build(plan.dockerfile, plan.tagsToApply);
 * ```
 */
export function resolveBuildPlan(
  spec: ImageSpecInput | ImageSpec,
  existingTags: Iterable<string>,
  options: BuildPlanOptions = {},
): BuildPlan {
  const resolved = parseImageSpec(spec);
  const { repository, forceRebuild, useVersioned, maxInlineBytes } = parseOrThrow(
    BuildPlanOptionsSchema,
    options,
    "build plan options",
  );
  const tags = tagsOf(resolved);
  const ref = (tag: string) => `${repository}:${tag}`;
  const image = ref(tags.sourceTag);
  const exists = tagMatcher(existingTags, repository);
  if (!forceRebuild && exists(tags.sourceTag)) {
    return { kind: "reuse-exact", image, from: null, tagsToApply: [], dockerfile: null, tags };
  }
  const rendered = renderResolved(resolved, { maxInlineBytes });
  if (!forceRebuild && exists(tags.lockTag)) {
    const from = ref(tags.lockTag);
    return {
      kind: "build-from-lock",
      image,
      from,
      tagsToApply: [image],
      dockerfile: dockerfileText({ kind: "registry", image: from }, rendered.source),
      tags,
    };
  }
  if (!forceRebuild && useVersioned && exists(tags.versionedTag)) {
    const from = ref(tags.versionedTag);
    return {
      kind: "build-from-versioned",
      image,
      from,
      tagsToApply: [image, ref(tags.lockTag)],
      dockerfile: dockerfileText({ kind: "registry", image: from }, [...rendered.lock, ...rendered.source]),
      tags,
    };
  }
  // As in OpenHands, only scratch builds get the versioned tag, so versioned builds never stack layers.
  return {
    kind: "from-scratch",
    image,
    from: rendered.base.kind === "registry" ? rendered.base.image : null,
    tagsToApply: [image, ref(tags.lockTag), ref(tags.versionedTag)],
    dockerfile: dockerfileText(rendered.base, [...rendered.lock, ...rendered.source]),
    tags,
  };
}
