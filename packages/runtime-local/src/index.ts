/**
 * @agent-runtime/runtime-local: the embedded default backend. Each sandbox is the bundled action-server as a
 * local child process group (optionally inside bubblewrap), reached over 127.0.0.1 with a fresh session key.
 */

// Provider and plugin
export { localRuntime, localRuntimePlugin, LocalRuntimeProvider } from "./provider.js";
export { LocalRuntime } from "./local-runtime.js";

// Options
export { LocalRuntimeOptionsSchema, LocalLimitsSchema } from "./options.js";
export type { LocalRuntimeOptions, ResolvedLocalRuntimeOptions } from "./options.js";
