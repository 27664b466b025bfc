import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseImageSpec } from "@agent-runtime/image-builder";
import { parseOrThrow } from "@agent-runtime/runtime-core";
import { parseModalRuntimeOptions } from "@agent-runtime/runtime-modal";
import { expect, test } from "vitest";
import { loadHostConfig, parseHostConfig, parseStructuredText } from "../src/config.js";
import { builtinRegistry } from "../src/plugins.js";

// The example configurations docs/production.md points to: they must parse with the host's config parser and
// with each plugin's own options schema (what `serve --config` does before it creates anything).

const examples = join(import.meta.dirname, "..", "examples");

test("examples/host.modal.yaml is a valid host config, and its plugin options pass each plugin's schema", () => {
  const config = loadHostConfig(join(examples, "host.modal.yaml"));
  expect(config.runtime.plugin).toBe("modal");
  const modal = parseModalRuntimeOptions(config.runtime.options);
  expect(modal).toMatchObject({
    appName: "agent-host-prod",
    cpuCores: 1,
    cpuLimitCores: 2,
    memoryMiB: 2048,
    pool: { size: 2 },
  });
  const registry = builtinRegistry();
  const secrets = registry.get("secrets", config.secrets.plugin);
  const secretOptions = parseOrThrow(secrets.optionsSchema, config.secrets.options, "secrets.options");
  expect(JSON.stringify(secretOptions)).toContain('"type":"modal"');
  const cost = registry.get("cost", config.cost.plugin);
  const costOptions = parseOrThrow(cost.optionsSchema, config.cost.options, "cost.options") as {
    budgets: { name: string }[];
  };
  expect(costOptions.budgets.map((b) => b.name)).toEqual(["daily-cap", "per-user"]);
  expect(config.sessions.keepAliveOnShutdown).toBe(true);
});

test("the custom image spec in docs/production.md is a valid host config and image spec", () => {
  const doc = readFileSync(join(import.meta.dirname, "..", "..", "..", "docs", "production.md"), "utf8");
  const images = doc.slice(doc.indexOf("### Images"));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(images)?.[1];
  expect(yaml).toBeDefined();
  const config = parseHostConfig(parseStructuredText(yaml!, "docs/production.md"));
  const options = parseModalRuntimeOptions(config.runtime.options);
  const spec = parseImageSpec(options.image);
  expect(spec.server?.kind).toBe("agent-runtime");
});
