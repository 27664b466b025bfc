import type { Logger } from "@agent-runtime/runtime-core";

/**
 * A host logger that counts the unary gRPC calls the real SDK sends: with `sdkLogLevel: "debug"`, modal@0.11.1
 * logs "Sending gRPC request" with the method's path once per call (before its own retries), and runtime-modal
 * passes SDK lines to the host logger as `modal: <message>`. Streaming calls are not logged by the SDK.
 */
export class CallCounter {
  readonly #calls: string[] = [];
  readonly warnings: { message: string; fields?: Record<string, unknown> }[] = [];
  /** runtime-modal's own debug lines (not the SDK's). */
  readonly debugs: string[] = [];

  readonly logger: Logger = {
    debug: (message, fields) => {
      if (message === "modal: Sending gRPC request" && typeof fields?.method === "string") {
        this.#calls.push(fields.method.split("/").pop() ?? fields.method);
      } else if (!message.startsWith("modal: ")) {
        this.debugs.push(message);
      }
    },
    info: () => {},
    warn: (message, fields) => {
      this.warnings.push({ message, ...(fields ? { fields } : {}) });
    },
    error: () => {},
  };

  /** Calls of the methods named (every call when none is named) since the last `reset()`. */
  count(...methods: string[]): number {
    return methods.length === 0 ? this.#calls.length : this.#calls.filter((m) => methods.includes(m)).length;
  }

  reset(): void {
    this.#calls.length = 0;
    this.warnings.length = 0;
    this.debugs.length = 0;
  }
}
