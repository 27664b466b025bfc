/**
 * @agent-runtime/runtime-local: the embedded default backend. Each sandbox is the bundled action-server as a
 * local child process group (optionally inside bubblewrap), reached over 127.0.0.1 with a fresh session key.
 */

export { LocalRuntime } from "./local-runtime.js";
export type { LocalRuntimeOptions, ResolvedLocalRuntimeOptions } from "./options.js";

// Options
export { LocalLimitsSchema, LocalRuntimeOptionsSchema } from "./options.js";
// Provider and plugin
export { LocalRuntimeProvider, localRuntime, localRuntimePlugin } from "./provider.js";
