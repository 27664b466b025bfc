import type { SecretStore } from "./types.js";

/** Options of {@link EnvStore}. */
export interface EnvStoreOptions {
  /** Host variables with this prefix are passed with it removed (`SANDBOX_ENV_FOO` -> `FOO`); "" disables. */
  prefix: string;
  /** Host variables passed under the same name. */
  names: readonly string[];
  /** Sandbox name -> host name. */
  mapping: Readonly<Record<string, string>>;
  /** The environment to read. @default process.env */
  source?: Readonly<Record<string, string | undefined>> | undefined;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Reads the host environment at each `load()`: prefix-mapped variables first, then `names`, then
 * `mapping` (later ones win). Values are never kept between loads.
 */
export class EnvStore implements SecretStore {
  readonly #options: EnvStoreOptions;

  constructor(options: EnvStoreOptions) {
    this.#options = options;
  }

  get label(): string {
    return this.#options.prefix ? `env:${this.#options.prefix}*` : "env";
  }

  async load(): Promise<Record<string, string>> {
    const source = this.#options.source ?? process.env;
    const out: Record<string, string> = {};
    const { prefix } = this.#options;
    if (prefix) {
      for (const [key, value] of Object.entries(source)) {
        if (value === undefined || !key.startsWith(prefix)) continue;
        const name = key.slice(prefix.length);
        if (NAME.test(name)) out[name] = value;
      }
    }
    for (const name of this.#options.names) {
      const value = source[name];
      if (value !== undefined) out[name] = value;
    }
    for (const [name, hostName] of Object.entries(this.#options.mapping)) {
      const value = source[hostName];
      if (value !== undefined) out[name] = value;
    }
    return out;
  }

  /** The label only. */
  toJSON(): { store: string } {
    return { store: this.label };
  }
}
