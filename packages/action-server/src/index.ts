/**
 * @agent-runtime/action-server: the HTTP server that runs inside every sandbox and executes actions
 * (OpenHands V0 wire protocol). Ships as one bundled file; this entry starts it in-process or locates it.
 */

// The bundled executable
export { actionServerBinPath } from "./bin-path.js";
export { parseCliArgs, USAGE } from "./cli.js";
export type { ActionServerOptions, ResolvedActionServerOptions } from "./options.js";
export { ActionServerOptionsSchema } from "./options.js";
// Pieces other packages may reuse
export { splitBashCommands } from "./shell/split-commands.js";
export type { ActionServerHandle } from "./start-server.js";
// Starting the server
export { startActionServer } from "./start-server.js";
export { ENV_FROM_STDIN_FLAG, parseStdinEnv, readStdinEnv } from "./stdin-env.js";
export { unifiedDiff } from "./util/unified-diff.js";
