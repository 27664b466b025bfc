import type { ResolvedSecrets, SecretReference } from "@agent-runtime/runtime-core";

/**
 * The secret references a Modal sandbox attaches as Modal named secrets: those whose `backend` is `"modal"`, from
 * whichever secrets plugin resolved them (references for other backends are ignored). Modal injects their values,
 * so they never cross the host.
 */
export function modalSecretReferences(secrets: ResolvedSecrets | undefined): readonly SecretReference[] {
  return secrets?.references?.filter((ref) => ref.backend === "modal") ?? [];
}
