import { inspect } from "node:util";
import type { Logger, ResolvedSecrets, SecretReference, SecretsPlugin } from "@agent-runtime/runtime-core";
import { quietLogger, RuntimeError } from "@agent-runtime/runtime-core";
import { toSecretsError } from "./errors.js";
import type { SandboxFile } from "./git-credentials.js";
import { gitCredentialFiles } from "./git-credentials.js";
import type { ResolvedProviderOptions, ResolvedSecretsOptions } from "./options.js";
import { DotenvStore } from "./providers/dotenv.js";
import { EnvStore } from "./providers/env.js";
import { MemoryStore } from "./providers/memory.js";
import type { SecretStore } from "./providers/types.js";
import { hiddenRecord } from "./redaction/hidden.js";
import type { SecretRedactor } from "./redaction/redactor.js";
import { createRedactor, MutableRedactor } from "./redaction/redactor.js";
import { EncryptedFileStore } from "./store/encrypted-file-store.js";

/**
 * What {@link ProviderSecretsResolver.resolve} returns: runtime-core's {@link ResolvedSecrets} (with the Modal
 * named secrets as `references`, no values) plus which provider supplied each name.
 * `JSON.stringify` and `util.inspect` show names only.
 */
export interface ResolvedSecretSet extends ResolvedSecrets {
  /** A redactor that knows every value in `env` and also redacts streams. */
  readonly redactor: SecretRedactor;
  /**
   * Secrets a backend resolves itself: each `modal` provider as `{ backend: "modal", name, requiredKeys,
   * environment? }` (runtime-modal attaches them as Modal named secrets; other backends ignore them).
   */
  readonly references: readonly SecretReference[];
  /** Name -> label of the provider that supplied it (safe to log). */
  readonly sources: Readonly<Record<string, string>>;
}

/** Services {@link ProviderSecretsResolver} uses besides its options. */
export interface ResolverDeps {
  /** @default quietLogger */
  logger?: Logger | undefined;
  /** Extra stores (a vault client, say), read after the configured providers. */
  stores?: readonly SecretStore[] | undefined;
}

/** One missing required key, named with the provider that should have had it. */
export interface MissingSecret {
  key: string;
  provider: string;
}

interface ConfiguredStore {
  store: SecretStore;
  required: readonly string[];
  names?: readonly string[] | undefined;
  optional: boolean;
}

/**
 * A runtime-core `SecretsPlugin` over configured providers. Each `resolve()` reads every provider again (so
 * rotated values reach the next sandbox), merges them in order (later wins), checks required keys, and
 * returns the environment, a redactor, git credential files and secret references (Modal named secrets).
 *
 * `redactor` is a live redactor that knows every value this resolver has resolved so far (the plugin
 * instance's `SecretsPlugin.redactor`): hosts install it on their logs, events and stored records.
 */
export class ProviderSecretsResolver implements SecretsPlugin {
  /** Knows every value resolved so far (grows with each `resolve()`). */
  readonly redactor: MutableRedactor;
  /** Secret references from the configuration (each `modal` provider, as `backend: "modal"`). */
  readonly references: readonly SecretReference[];
  readonly #options: ResolvedSecretsOptions;
  readonly #logger: Logger;
  readonly #stores: ConfiguredStore[];
  readonly #warnedShort = new Set<string>();

  constructor(options: ResolvedSecretsOptions, deps: ResolverDeps = {}) {
    this.#options = options;
    this.#logger = deps.logger ?? quietLogger;
    this.redactor = new MutableRedactor({
      minLength: options.minRedactLength,
      placeholder: options.placeholder,
    });
    const refs: SecretReference[] = [];
    this.#stores = [];
    for (const provider of options.providers) {
      if (provider.type === "modal") {
        refs.push(
          Object.freeze({
            backend: "modal",
            name: provider.name,
            requiredKeys: Object.freeze([...provider.requiredKeys]),
            ...(provider.environment ? { environment: provider.environment } : {}),
          }),
        );
      } else {
        this.#stores.push(this.#buildStore(provider));
      }
    }
    for (const store of deps.stores ?? []) this.#stores.push({ store, required: [], optional: false });
    this.references = Object.freeze(refs);
  }

  /** Labels of the providers, in reading order (safe to log). */
  get providers(): string[] {
    return [
      ...this.#stores.map((s) => s.store.label),
      ...this.references.map((r) => `${r.backend}:${r.name}`),
    ];
  }

  /**
   * Reads every provider and returns the secrets for one sandbox. Throws NOT_FOUND naming each missing
   * required key and its provider; provider failures keep their code and name the provider.
   */
  async resolve(
    request: { sessionId?: string; required?: readonly string[] } = {},
  ): Promise<ResolvedSecretSet> {
    const env: Record<string, string> = {};
    const sources: Record<string, string> = {};
    const missing: MissingSecret[] = [];
    for (const { store, required, names, optional } of this.#stores) {
      let values: Record<string, string> = {};
      try {
        values = await store.load();
      } catch (err) {
        if (!optional || (err as { code?: string }).code !== "NOT_FOUND") {
          throw toSecretsError(err, `read secrets from ${store.label}`);
        }
      }
      for (const key of required)
        if (!Object.hasOwn(values, key)) missing.push({ key, provider: store.label });
      for (const [name, value] of Object.entries(values)) {
        if (names && !names.includes(name)) continue;
        env[name] = value;
        sources[name] = store.label;
      }
    }
    const referencedKeys = new Set(this.references.flatMap((r) => r.requiredKeys ?? []));
    for (const key of request.required ?? []) {
      if (!Object.hasOwn(env, key) && !referencedKeys.has(key)) {
        missing.push({ key, provider: this.providers.join(", ") || "(no providers configured)" });
      }
    }
    if (missing.length) throw missingError(missing);

    const names = Object.keys(env).sort();
    this.#warnShort(env);
    const redactor = createRedactor(env, {
      minLength: this.#options.minRedactLength,
      placeholder: this.#options.placeholder,
    });
    this.redactor.add(env);
    const git = this.#options.git;
    const files = git.enabled
      ? gitCredentialFiles(names, { hosts: git.hosts, userName: git.userName, userEmail: git.userEmail })
      : undefined;
    this.#logger.debug("Resolved secrets", {
      sessionId: request.sessionId,
      names,
      references: this.references.map((r) => `${r.backend}:${r.name}`),
      files: files ? Object.keys(files) : [],
    });
    return new SecretSet(env, names, redactor, files, this.references, sources);
  }

  #buildStore(provider: Exclude<ResolvedProviderOptions, { type: "modal" }>): ConfiguredStore {
    switch (provider.type) {
      case "env":
        return {
          store: new EnvStore({
            prefix: provider.prefix,
            names: provider.names,
            mapping: provider.mapping,
            source: provider.source,
          }),
          required: provider.required,
          optional: false,
        };
      case "dotenv":
        return {
          store: new DotenvStore({ path: provider.path, optional: provider.optional }),
          required: provider.required,
          optional: provider.optional,
        };
      case "memory":
        return { store: new MemoryStore(provider.values), required: provider.required, optional: false };
      case "encrypted-file":
        return {
          store: new EncryptedFileStore({
            path: provider.path,
            keyFile: provider.keyFile,
            keyEnv: provider.keyEnv,
            logger: this.#logger,
          }),
          required: provider.required,
          names: provider.names,
          optional: provider.optional,
        };
    }
  }

  #warnShort(env: Record<string, string>): void {
    const fresh = Object.entries(env)
      .filter(
        ([name, v]) =>
          v.length > 0 && v.length < this.#options.minRedactLength && !this.#warnedShort.has(name),
      )
      .map(([name]) => name);
    if (fresh.length === 0) return;
    for (const name of fresh) this.#warnedShort.add(name);
    this.#logger.warn(
      `Secret values shorter than ${this.#options.minRedactLength} characters are injected but not redacted ` +
        "(they would match ordinary text). Use longer values for anything sensitive.",
      { names: fresh },
    );
  }

  /** Provider labels only. */
  toJSON(): { providers: string[] } {
    return { providers: this.providers };
  }

  [inspect.custom](): string {
    return `ProviderSecretsResolver { providers: ${JSON.stringify(this.providers)} }`;
  }
}

class SecretSet implements ResolvedSecretSet {
  readonly env: Readonly<Record<string, string>>;
  readonly names: readonly string[];
  readonly redactor: SecretRedactor;
  readonly files?: Readonly<Record<string, SandboxFile>>;
  readonly references: readonly SecretReference[];
  readonly sources: Readonly<Record<string, string>>;

  constructor(
    env: Record<string, string>,
    names: string[],
    redactor: SecretRedactor,
    files: Record<string, SandboxFile> | undefined,
    references: readonly SecretReference[],
    sources: Record<string, string>,
  ) {
    this.env = hiddenRecord(env);
    this.names = Object.freeze(names);
    this.redactor = redactor;
    if (files) this.files = hiddenRecord(files);
    this.references = references;
    this.sources = Object.freeze(sources);
  }

  toJSON(): Record<string, unknown> {
    return {
      names: this.names,
      env: "[redacted]",
      files: this.files ? Object.keys(this.files) : [],
      references: this.references,
      sources: this.sources,
    };
  }

  [inspect.custom](_depth: number, options: object): string {
    return `ResolvedSecrets ${inspect(this.toJSON(), options)}`;
  }
}

function missingError(missing: MissingSecret[]): RuntimeError {
  const issues = missing.map((m) => `${m.key}: not found in ${m.provider}`);
  return new RuntimeError(
    "NOT_FOUND",
    `Required secrets are missing:\n  ${issues.join("\n  ")}\nAdd each one to the provider named, or remove it from "required".`,
    { details: { missing } },
  );
}
