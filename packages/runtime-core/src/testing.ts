/**
 * `@agent-runtime/runtime-core/testing`: the runtime conformance kit. Any backend, ours or a third party's,
 * runs the whole suite from a few lines:
 *
 * @example
 * ```ts
 * import { runRuntimeConformance } from "@agent-runtime/runtime-core/testing";
 * runRuntimeConformance({
 *   name: "my-backend",
 *   capabilities: myCapabilities,
 *   create: ({ sessionId, context, noChangeTimeoutSeconds }) => new MyRuntime({ sessionId, context }),
 *   attach: (handle, { context }) => MyRuntime.attach(handle, context),
 * });
 * ```
 *
 * A capability the backend lacks shows as skipped, never as passed.
 */

export type { CapturedLog, ConformanceCreateInput, ConformanceOptions } from "./testing/conformance.js";
export { conformanceContext, runRuntimeConformance } from "./testing/conformance.js";
export { NO_CAPABILITIES, ServerRuntime, type ServerRuntimeOptions } from "./testing/server-runtime.js";
