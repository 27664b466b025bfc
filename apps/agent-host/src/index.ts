/** Reference host: composes the packages through the plugin registry; HTTP API, CLI (serve, run, demo). */
export const PACKAGE_NAME = "@agent-runtime/agent-host";
