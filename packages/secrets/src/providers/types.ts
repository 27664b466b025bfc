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
