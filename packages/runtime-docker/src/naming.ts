import { LEASE_TAG_KEY } from "@agent-runtime/runtime-core";

/** The value of the `agent-runtime.managed-by` label on every container runtime-docker creates. */
export const MANAGED_BY = "runtime-docker";

/** Container names start with this. */
export const CONTAINER_NAME_PREFIX = "ar-";

/** Where the server's socket directory is bound inside the container (socket mode). */
export const SOCKET_DIR_IN_CONTAINER = "/run/agent-runtime";

/** The labels runtime-docker puts on its containers (the engine cannot change labels once created). */
export const LABELS = {
  /** Always `runtime-docker`: what sweeps and listings look for. */
  managedBy: "agent-runtime.managed-by",
  /** The session id the container was created for (a pool's own id for pooled containers). */
  session: "agent-runtime.session",
  /** The cost lease that pays for the container (runtime-core's LEASE_TAG_KEY). */
  lease: LEASE_TAG_KEY,
  /** The warm pool that created the container. */
  pool: "agent-runtime.pool",
  /** A session's `labels` override `k` becomes the label `agent-runtime.label.k`. */
  userLabelPrefix: "agent-runtime.label.",
} as const;
