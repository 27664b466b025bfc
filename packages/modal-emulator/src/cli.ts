/** Modal's gRPC API on 127.0.0.1 with sandboxes as local processes: offline development and real tests of Modal code. */
export const PACKAGE_NAME = "@agent-runtime/modal-emulator";
