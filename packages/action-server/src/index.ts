/** The HTTP server that runs inside every sandbox and executes actions (OpenHands V0 wire protocol), bundled to one file. */
export const PACKAGE_NAME = "@agent-runtime/action-server";
