import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import {
  isRuntimeError,
  type Logger,
  noopRedactor,
  type PluginInstance,
  type PluginOptions,
  PluginRegistry,
  type SecretsPlugin,
  type SecretsResolver,
  silentLogger,
} from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import {
  EncryptedFileStore,
  generateKey,
  ProviderSecretsResolver,
  type SecretStore,
  type SecretsOptions,
  secretsPlugin,
  secretsResolver,
} from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "secrets-resolver-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const push = (m: string, f?: object) => lines.push(`${m} ${JSON.stringify(f ?? {})}`);
  return { logger: { debug: push, info: push, warn: push, error: push }, lines };
}

async function caught(
  p: Promise<unknown>,
): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

describe("providers", () => {
  it("maps prefixed host variables, copies named ones, and applies renames", async () => {
    const resolver = secretsResolver({
      providers: [
        {
          type: "env",
          names: ["GITHUB_TOKEN"],
          mapping: { NPM_TOKEN: "CI_NPM_TOKEN" },
          source: {
            SANDBOX_ENV_FOO: "foo-value-1",
            SANDBOX_ENV_1BAD: "skipped: not a variable name",
            GITHUB_TOKEN: "ghp_exampletoken000",
            CI_NPM_TOKEN: "npm_exampletoken000",
            UNRELATED: "not passed",
          },
        },
      ],
    });
    const set = await resolver.resolve();
    expect({ ...set.env }).toEqual({
      FOO: "foo-value-1",
      GITHUB_TOKEN: "ghp_exampletoken000",
      NPM_TOKEN: "npm_exampletoken000",
    });
    expect(set.names).toEqual(["FOO", "GITHUB_TOKEN", "NPM_TOKEN"]);
    expect(set.sources.FOO).toBe("env:SANDBOX_ENV_*");
  });

  it("defaults to the SANDBOX_ENV_ prefix of process.env", async () => {
    process.env.SANDBOX_ENV_RESOLVER_TEST = "from-process-env";
    try {
      const set = await secretsResolver().resolve();
      expect(set.env.RESOLVER_TEST).toBe("from-process-env");
    } finally {
      delete process.env.SANDBOX_ENV_RESOLVER_TEST;
    }
  });

  it("merges dotenv, memory and encrypted-file providers in order, later ones winning", async () => {
    const dotenv = join(dir, "merge.env");
    writeFileSync(dotenv, "A=from-dotenv\nB=from-dotenv\n");
    const key = generateKey();
    const storePath = join(dir, "merge.enc");
    const store = new EncryptedFileStore({ path: storePath, env: { AGENT_RUNTIME_SECRETS_KEY: key } });
    await store.set("C", "from-encrypted");
    await store.set("HIDDEN", "not-selected");
    process.env.RESOLVER_TEST_KEY = key;
    try {
      const resolver = secretsResolver({
        providers: [
          { type: "dotenv", path: dotenv },
          { type: "memory", values: { B: "from-memory", D: "from-memory" } },
          { type: "encrypted-file", path: storePath, keyEnv: "RESOLVER_TEST_KEY", names: ["C"] },
        ],
      });
      const set = await resolver.resolve();
      expect({ ...set.env }).toEqual({
        A: "from-dotenv",
        B: "from-memory",
        C: "from-encrypted",
        D: "from-memory",
      });
      expect(set.sources).toEqual({
        A: `dotenv:${dotenv}`,
        B: "memory",
        C: `encrypted-file:${storePath}`,
        D: "memory",
      });
      // Each resolve reads the providers again.
      writeFileSync(dotenv, "A=rotated\n");
      expect((await resolver.resolve()).env.A).toBe("rotated");
    } finally {
      delete process.env.RESOLVER_TEST_KEY;
    }
  });

  it("treats a missing optional file as empty and a missing required one as NOT_FOUND", async () => {
    const missing = join(dir, "nope.env");
    const ok = await secretsResolver({
      providers: [{ type: "dotenv", path: missing, optional: true }],
    }).resolve();
    expect(ok.names).toEqual([]);
    const err = await caught(secretsResolver({ providers: [{ type: "dotenv", path: missing }] }).resolve());
    expect(isRuntimeError(err, "NOT_FOUND")).toBe(true);
    expect(err.message).toContain(missing);
    expect(err.message).toContain("optional: true");
  });

  it("reads extra host stores after the configured providers", async () => {
    const vault: SecretStore = { label: "vault:kv/app", load: async () => ({ VAULT_KEY: "from-the-vault" }) };
    const set = await secretsResolver({ providers: [] }, { stores: [vault] }).resolve();
    expect(set.env.VAULT_KEY).toBe("from-the-vault");
    expect(set.sources.VAULT_KEY).toBe("vault:kv/app");
  });
});

describe("required keys", () => {
  it("names each missing key and its provider, never a value", async () => {
    const resolver = secretsResolver({
      providers: [
        { type: "memory", values: { PRESENT: "present-value-123" }, required: ["PRESENT", "ABSENT"] },
        { type: "env", prefix: "", names: ["OTHER"], source: { OTHER: "other-value-123" } },
      ],
    });
    const err = await caught(resolver.resolve({ required: ["ALSO_ABSENT", "OTHER"] }));
    expect(isRuntimeError(err, "NOT_FOUND")).toBe(true);
    expect(err.message).toContain("ABSENT: not found in memory");
    expect(err.message).toContain("ALSO_ABSENT: not found in memory, env");
    expect(err.message).not.toContain("present-value-123");
    expect(err.message).not.toContain("other-value-123");
    expect(err.details?.missing).toEqual([
      { key: "ABSENT", provider: "memory" },
      { key: "ALSO_ABSENT", provider: "memory, env" },
    ]);
  });

  it("counts keys a Modal secret must hold as satisfied", async () => {
    const resolver = secretsResolver({
      providers: [{ type: "modal", name: "api-keys", requiredKeys: ["OPENAI_API_KEY"], environment: "dev" }],
    });
    const set = await resolver.resolve({ required: ["OPENAI_API_KEY"] });
    // runtime-core's SecretReference: what any backend reads, with no duck-typing of this package's types.
    expect(set.references).toEqual([
      { backend: "modal", name: "api-keys", requiredKeys: ["OPENAI_API_KEY"], environment: "dev" },
    ]);
    expect(resolver.references).toBe(set.references);
    expect(JSON.parse(JSON.stringify(set)).references).toEqual(set.references);
    expect(resolver.providers).toEqual(["modal:api-keys"]);
    // Without Modal providers there are no references (an empty list, never undefined).
    expect(
      (await secretsResolver({ providers: [{ type: "memory", values: {} }] }).resolve()).references,
    ).toEqual([]);
  });
});

describe("options", () => {
  it("reports every invalid field as path: message", () => {
    let err: (Error & { issues?: string[] }) | undefined;
    try {
      secretsResolver({
        providers: [
          { type: "memory", values: { "bad-name": "x" } },
          { type: "nope" } as unknown as { type: "env" },
        ],
        minRedactLength: 0,
        git: { hosts: { GITHUB_TOKEN: ["not a url"] } },
      });
    } catch (e) {
      err = e as Error;
    }
    expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
    expect(err?.issues?.some((i) => i.startsWith("providers[0].values.bad-name"))).toBe(true);
    expect(err?.issues?.some((i) => i.startsWith("providers[1]"))).toBe(true);
    expect(err?.issues?.some((i) => i.startsWith("minRedactLength:"))).toBe(true);
    expect(err?.issues?.some((i) => i.startsWith("git.hosts.GITHUB_TOKEN[0]:"))).toBe(true);
  });

  it("warns once per too-short value, naming it", async () => {
    const { logger, lines } = capture();
    const resolver = secretsResolver(
      { providers: [{ type: "memory", values: { PIN: "1234", LONG: "long-enough-secret" } }] },
      { logger },
    );
    const set = await resolver.resolve();
    await resolver.resolve();
    expect(set.env.PIN).toBe("1234");
    expect(set.redactor.redact("1234 long-enough-secret")).toBe("1234 [redacted]");
    const warnings = lines.filter((l) => l.includes("not redacted"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("PIN");
    expect(warnings[0]).not.toContain("1234");
  });
});

describe("serialization", () => {
  it("shows names only in JSON.stringify and util.inspect", async () => {
    const secret = "serialization-secret-value";
    const resolver = secretsResolver({
      providers: [{ type: "memory", values: { API_KEY: secret, GITHUB_TOKEN: `ghp_${secret}` } }],
    });
    const set = await resolver.resolve();
    for (const text of [
      JSON.stringify(set),
      JSON.stringify(set.env),
      JSON.stringify(set.files),
      JSON.stringify({ nested: set, resolver }),
      JSON.stringify(resolver),
      inspect(set, { depth: 10, showHidden: true }),
      inspect(set.env, { depth: 10 }),
      inspect(resolver, { depth: 10, showHidden: true }),
      inspect(set.redactor, { depth: 10, showHidden: true }),
      inspect({ set }, { depth: 10 }),
      String(set),
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(JSON.stringify(set.env)).toBe('{"API_KEY":"[redacted]","GITHUB_TOKEN":"[redacted]"}');
    // The values are still there for the runtime to inject.
    expect(Object.entries(set.env)).toContainEqual(["API_KEY", secret]);
    expect({ ...set.env }.API_KEY).toBe(secret);
    expect(Object.isFrozen(set.env)).toBe(true);
  });
});

describe("plugin", () => {
  it("registers as the secrets plugin and creates a SecretsResolver from validated options", async () => {
    const registry = new PluginRegistry().register(secretsPlugin);
    const instance = registry.create(
      "secrets",
      "secrets",
      { providers: [{ type: "memory", values: { X: "plugin-value-1" } }] },
      { logger: silentLogger, redactor: noopRedactor },
    ) as ProviderSecretsResolver;
    expect(instance).toBeInstanceOf(ProviderSecretsResolver);
    expect((await instance.resolve()).env.X).toBe("plugin-value-1");
    expect(instance.redactor.redact("plugin-value-1")).toBe("[redacted]");
    expect(() =>
      registry.create(
        "secrets",
        "secrets",
        { providers: [{ type: "env", prefix: 3 }] },
        {
          logger: silentLogger,
          redactor: noopRedactor,
        },
      ),
    ).toThrow(/providers\[0\]\.prefix/);
  });

  it("its instance's redactor is live: it knows every value resolved so far, across sessions and rotations", async () => {
    const values: Record<string, string> = { API_KEY: "first-rotation-value" };
    const rotating: SecretStore = { label: "rotating", load: async () => ({ ...values }) };
    const plugin = secretsResolver({ providers: [] }, { stores: [rotating] });
    const instance: SecretsPlugin = plugin;
    expect(instance.redactor?.isEmpty).toBe(true);
    const first = await plugin.resolve({ sessionId: "s1" });
    values.API_KEY = "second-rotation-value";
    const second = await plugin.resolve({ sessionId: "s2" });
    const text = "first-rotation-value and second-rotation-value";
    // Each resolution's redactor knows its own values; the instance's knows both.
    expect(first.redactor.redact(text)).toBe("[redacted] and second-rotation-value");
    expect(second.redactor.redact(text)).toBe("first-rotation-value and [redacted]");
    expect(instance.redactor?.redact(text)).toBe("[redacted] and [redacted]");
    expect(instance.redactor?.redactDeep({ log: [text] })).toEqual({ log: ["[redacted] and [redacted]"] });
  });

  it("the factory and the registry run one pipeline: renamed options, schema, then validate", () => {
    const registry = new PluginRegistry().register(secretsPlugin);
    const context = { logger: silentLogger, redactor: noopRedactor };
    const viaRegistry = (options: unknown) => () => registry.create("secrets", "secrets", options, context);
    const viaFactory = (options: unknown) => () => secretsResolver(options as SecretsOptions);
    const renamed = { provider: [{ type: "env" }] };
    for (const make of [viaRegistry, viaFactory]) {
      expect(make(renamed)).toThrow('provider: this option is now "providers"');
    }
    const twice = {
      providers: [
        { type: "modal", name: "team", requiredKeys: ["A"] },
        { type: "env" },
        { type: "modal", name: "team", requiredKeys: ["B"] },
        { type: "modal", name: "team", environment: "dev" },
      ],
    };
    for (const make of [viaRegistry, viaFactory]) {
      let err: (Error & { issues?: string[] }) | undefined;
      try {
        make(twice)();
      } catch (e) {
        err = e as Error;
      }
      expect(isRuntimeError(err, "INVALID_ARGUMENT")).toBe(true);
      // The same name in another environment is another secret.
      expect(err?.issues).toEqual([
        'providers[2].name: the Modal secret "team" is already listed as providers[0]; list it once with every key in its requiredKeys',
      ]);
    }
  });

  it("infers options and instance types", () => {
    expectTypeOf<PluginOptions<typeof secretsPlugin>>().toEqualTypeOf<SecretsOptions>();
    expectTypeOf<PluginInstance<typeof secretsPlugin>>().toEqualTypeOf<ProviderSecretsResolver>();
    expectTypeOf<ProviderSecretsResolver>().toMatchTypeOf<SecretsResolver>();
    expectTypeOf<ProviderSecretsResolver>().toMatchTypeOf<SecretsPlugin>();
    expectTypeOf(secretsPlugin.kind).toEqualTypeOf<"secrets">();
  });
});
