import { readFileSync } from "node:fs";
import { extname } from "node:path";
import {
  formatZodIssues,
  InvalidArgumentError,
  RuntimeError,
  renamedOptionIssues,
} from "@agent-runtime/runtime-core";
import { parseDocument } from "yaml";
import {
  type HostConfig,
  HostConfigSchema,
  RENAMED_CONFIG_KEYS,
  type ResolvedHostConfig,
} from "./options.js";

/**
 * Parses a YAML or JSON text into a plain value. Syntax errors throw INVALID_ARGUMENT naming the source and
 * the line and column.
 */
export function parseStructuredText(text: string, source: string): unknown {
  if (extname(source).toLowerCase() === ".json") {
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      const issue = `${source}: not valid JSON (${(cause as Error).message})`;
      throw new InvalidArgumentError(`Invalid ${source}: ${issue}`, [issue], { cause });
    }
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const pos = first.linePos?.[0];
    const where = pos ? ` at line ${pos.line}, column ${pos.col}` : "";
    const issue = `${source}${where}: ${first.message.split("\n")[0]}`;
    throw new InvalidArgumentError(
      `Invalid ${source}: not valid YAML${where}: ${first.message.split("\n")[0]}`,
      [issue],
    );
  }
  return doc.toJS() as unknown;
}

/**
 * Validates a host configuration object. Every problem is reported at once as `path: message`
 * (for example `server.port: Too big: expected number to be <=65535`); a misplaced top-level key names the
 * option to use (`port: this option is now "server.port"`).
 */
export function parseHostConfig(input: unknown, source = "host config"): ResolvedHostConfig {
  const value = input ?? {};
  const renamed = renamedOptionIssues(value, RENAMED_CONFIG_KEYS);
  if (renamed.length > 0)
    throw new InvalidArgumentError(`Invalid ${source}:\n  ${renamed.join("\n  ")}`, renamed);
  const result = HostConfigSchema.safeParse(value);
  if (!result.success) {
    const issues = formatZodIssues(result.error);
    throw new InvalidArgumentError(`Invalid ${source}:\n  ${issues.join("\n  ")}`, issues);
  }
  return result.data;
}

/** Command-line overrides of a configuration file (flags win over the file). */
export interface ConfigOverrides {
  host?: string;
  port?: number;
  db?: string;
  stateDir?: string;
  /** `false` from `--no-auth`. */
  auth?: boolean;
  runtime?: string;
}

/** Reads a YAML (`.yaml`, `.yml`) or JSON (`.json`) file as a plain value (not validated yet). */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "error";
    throw new RuntimeError(
      "NOT_FOUND",
      `Config file ${path} cannot be read (${code}); check the --config path.`,
      { cause },
    );
  }
  return parseStructuredText(text, path);
}

/**
 * Reads and validates a host configuration: the file (when given), with command-line overrides applied,
 * errors naming the file and each field path.
 */
export function loadHostConfig(
  path: string | undefined,
  overrides: ConfigOverrides = {},
): ResolvedHostConfig {
  const raw = path === undefined ? {} : readConfigFile(path);
  const source = path ?? "host config";
  if (raw !== null && raw !== undefined && (typeof raw !== "object" || Array.isArray(raw))) {
    throw new InvalidArgumentError(`Invalid ${source}: (root): expected a mapping of options`, [
      "(root): expected object",
    ]);
  }
  return parseHostConfig(withOverrides((raw ?? {}) as HostConfig, overrides), source);
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/** Applies command-line overrides to a configuration as users write it. A new runtime plugin drops the old one's options. */
export function withOverrides(config: HostConfig, overrides: ConfigOverrides): HostConfig {
  const out: Record<string, unknown> = { ...config };
  if (overrides.runtime !== undefined) {
    const runtime = record(config.runtime);
    const same = (runtime.plugin ?? "local") === overrides.runtime;
    out.runtime = { ...(same ? runtime : {}), plugin: overrides.runtime };
  }
  if (overrides.host !== undefined || overrides.port !== undefined || overrides.auth !== undefined) {
    out.server = {
      ...record(config.server),
      ...(overrides.host !== undefined ? { host: overrides.host } : {}),
      ...(overrides.port !== undefined ? { port: overrides.port } : {}),
      ...(overrides.auth !== undefined ? { auth: overrides.auth } : {}),
    };
  }
  if (overrides.db !== undefined || overrides.stateDir !== undefined) {
    out.storage = {
      ...record(config.storage),
      ...(overrides.db !== undefined ? { path: overrides.db } : {}),
      ...(overrides.stateDir !== undefined ? { stateDir: overrides.stateDir } : {}),
    };
  }
  return out as HostConfig;
}
