/** Embedded default runtime backend: the action-server as a local child process, optionally inside bubblewrap. */
export const PACKAGE_NAME = "@agent-runtime/runtime-local";
