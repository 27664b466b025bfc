/**
 * A source of secret values. Providers in this package implement it; a host can pass its own (a vault
 * client, say) to {@link secretsResolver} through `stores`.
 */
export interface SecretStore {
  /** What the store is, safe to log and to put in errors: a type and a path or prefix, never values. */
  readonly label: string;
  /** Reads every name -> value the store provides to sandboxes. */
  load(): Promise<Record<string, string>>;
}

/**
 * A reference to a Modal named secret. It carries no values: runtime-modal resolves it with
 * `client.secrets.fromName(ref.name, { requiredKeys: ref.requiredKeys, environment: ref.environment })` and
 * passes the result in `secrets` when it creates the sandbox. Modal injects the values, so they are not
 * known to the redactor.
 */
export interface ModalSecretRef {
  readonly kind: "modal";
  /** The secret's name in Modal. */
  readonly name: string;
  /** Keys Modal must find in the secret (Modal fails the lookup otherwise). */
  readonly requiredKeys: readonly string[];
  /** Modal environment; absent: the profile's default. */
  readonly environment?: string;
}
