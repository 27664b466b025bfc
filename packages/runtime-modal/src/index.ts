/** Modal runtime backend on the official modal@0.11.1 SDK: leases, readiness, durable handles, warm pools. */
export const PACKAGE_NAME = "@agent-runtime/runtime-modal";
