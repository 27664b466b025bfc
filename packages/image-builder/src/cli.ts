/** Declarative image spec to Dockerfile, Modal image and content-hash tags; standalone CLI. */
export const PACKAGE_NAME = "@agent-runtime/image-builder";
