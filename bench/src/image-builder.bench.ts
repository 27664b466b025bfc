/**
 * image-builder: specs hashed and rendered per second, against `JSON.stringify` of the same specs measured in
 * the same run. Each spec is validated (zod) by every call, as the public functions do.
 */
import { type ImageSpecInput, imageTags, toDockerfile } from "@agent-runtime/image-builder";
import { modalImagePlan } from "@agent-runtime/image-builder/modal";
import { report, round, sample, summarize } from "./harness.ts";

const SPECS = 200;
const ITERATIONS = 60;

function makeSpec(i: number): ImageSpecInput {
  return {
    base: { kind: "registry", image: `python:3.${10 + (i % 4)}-slim` },
    steps: [
      { kind: "apt-install", packages: ["git", "ripgrep", "jq", `pkg-${i}`] },
      { kind: "pip-install", packages: ["numpy>=1.26,<2", "requests[socks]==2.32.3", `lib${i}==1.0.${i}`] },
      { kind: "npm-install", packages: ["typescript@5.9.3", `@scope/tool-${i}@1.2.3`] },
      {
        kind: "env",
        vars: { LANG: "C.UTF-8", PS1: "$(whoami)> ", [`VAR_${i}`]: `value ${i} with 'quotes'` },
      },
      { kind: "run", command: `echo build ${i} && mkdir -p /srv/app` },
      { kind: "workdir", path: "/srv/app" },
      {
        kind: "copy-inline",
        path: "/srv/app/config.toml",
        content: `id = ${i}\nname = "spec ${i}"\n`.repeat(20),
      },
      { kind: "user", user: "1000:1000" },
    ],
    server: { kind: "agent-runtime", install: { strategy: "npm", version: `0.1.${i % 10}` } },
  };
}

const specs = Array.from({ length: SPECS }, (_, i) => makeSpec(i));
let sink = 0;
const measure = async (fn: (spec: ImageSpecInput) => unknown) =>
  summarize(
    await sample(() => {
      for (const spec of specs) sink += (fn(spec) as { length?: number }).length ?? 1;
    }, ITERATIONS),
  );

const cases: [string, (spec: ImageSpecInput) => unknown][] = [
  ["JSON.stringify (baseline)", (spec) => JSON.stringify(spec)],
  ["imageTags (hash)", (spec) => imageTags(spec).sourceTag],
  ["toDockerfile (render)", (spec) => toDockerfile(spec)],
  ["modalImagePlan (render)", (spec) => modalImagePlan(spec).layers],
  ["hash + render", (spec) => imageTags(spec).sourceTag + toDockerfile(spec)],
];
// Warm every code path up first, so the order of the cases does not decide who gets the optimised code.
for (const [, fn] of cases) await measure(fn);
const baseline = await measure(cases[0]![1]);
const rows: Record<string, unknown>[] = [];
for (const [name, fn] of cases) {
  const s = name.startsWith("JSON") ? baseline : await measure(fn);
  const specsPerSecond = SPECS / (s.p50 / 1000);
  rows.push({
    case: name,
    "specs/s": Math.round(specsPerSecond),
    "p50 ms/spec": round(s.p50 / SPECS, 4),
    "slower than JSON.stringify (x)": round(s.p50 / baseline.p50, 1),
  });
}
report("image-builder", rows);
if (sink === 0) console.log("(unreachable)");
