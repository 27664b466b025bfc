import { failedPrecondition, invalidArgument, notFound } from "./grpc-errors.js";
import { newId } from "./ids.js";
import type { SecretGetOrCreateMsg, SecretSourceMsg } from "./messages.js";

/** Environment variable names (secret keys). */
export const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `ObjectCreationType.EPHEMERAL`: the type of `secrets.fromObject` secrets. */
const EPHEMERAL = 5;

interface SecretRecord {
  secretId: string;
  /** Set for named secrets: values are read from the named-secret store at use. */
  name?: string;
  values?: Record<string, string>;
}

/** Named secrets configured in the emulator: name -> KEY -> value. */
export class NamedSecrets {
  readonly #values = new Map<string, Record<string, string>>();

  constructor(initial: Record<string, Record<string, string>> = {}) {
    for (const [name, values] of Object.entries(initial)) this.set(name, values);
  }

  /** Creates or replaces the secret `name`. */
  set(name: string, values: Record<string, string>): void {
    for (const key of Object.keys(values)) {
      if (!ENV_KEY_RE.test(key))
        throw new TypeError(`secret key ${JSON.stringify(key)} is not an env var name`);
    }
    this.#values.set(name, { ...values });
  }

  /** Deletes the secret `name`; returns whether it existed. */
  delete(name: string): boolean {
    return this.#values.delete(name);
  }

  /** The values of `name`, if it exists. */
  get(name: string): Record<string, string> | undefined {
    const v = this.#values.get(name);
    return v ? { ...v } : undefined;
  }

  /** Names of all secrets (never their values). */
  names(): string[] {
    return [...this.#values.keys()].sort();
  }
}

/** Secrets by id: ephemeral ones (`fromObject`) with their values, named ones read from {@link NamedSecrets}. */
export class SecretStore {
  readonly #named: NamedSecrets;
  readonly #secrets = new Map<string, SecretRecord>();
  readonly #namedSecretIds = new Map<string, string>();

  constructor(named: NamedSecrets) {
    this.#named = named;
  }

  /** `SecretGetOrCreate` (the environment is checked by the caller). */
  getOrCreate(req: SecretGetOrCreateMsg): object {
    if (req.object_creation_type === EPHEMERAL) {
      const values = req.env_dict ?? {};
      for (const key of Object.keys(values)) {
        if (!ENV_KEY_RE.test(key))
          throw invalidArgument(`Secret key ${JSON.stringify(key)} is not a valid name`);
      }
      const secretId = newId("st");
      this.#secrets.set(secretId, { secretId, values: { ...values } });
      return { secret_id: secretId };
    }
    const name = req.deployment_name ?? "";
    if (!name)
      throw invalidArgument("SecretGetOrCreate needs deployment_name or object_creation_type EPHEMERAL");
    const values = this.#named.get(name);
    if (!values) {
      throw notFound(
        `Secret '${name}' not found (configure it with the emulator's secrets option or --secret)`,
      );
    }
    const missing = (req.required_keys ?? []).filter((k) => !(k in values));
    if (missing.length > 0) throw failedPrecondition(`Secret is missing key(s): ${missing.join(", ")}`);
    let secretId = this.#namedSecretIds.get(name);
    if (!secretId) {
      secretId = newId("st");
      this.#namedSecretIds.set(name, secretId);
      this.#secrets.set(secretId, { secretId, name });
    }
    return { secret_id: secretId };
  }

  /** The current values of a secret id, or NOT_FOUND. */
  values(secretId: string): Record<string, string> {
    const secret = this.#secrets.get(secretId);
    if (!secret) throw notFound(`Secret ${secretId} not found`);
    if (secret.values) return secret.values;
    const values = this.#named.get(secret.name ?? "");
    if (!values) throw notFound(`Secret '${secret.name}' was deleted`);
    return values;
  }

  /** Environment from secret sources (`{secret_id}` or inline `{env}`), later sources winning. */
  resolveSources(sources: readonly SecretSourceMsg[] | undefined): Record<string, string> {
    const env: Record<string, string> = {};
    for (const source of sources ?? []) {
      if (source.secret_id) Object.assign(env, this.values(source.secret_id));
      else if (source.env) Object.assign(env, source.env.contents ?? {});
    }
    return env;
  }
}
