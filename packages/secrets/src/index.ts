/** Secret providers, injection into sandboxes, and redaction of secret values everywhere. */
export const PACKAGE_NAME = "@agent-runtime/secrets";
