import { RuntimeError } from "../errors.js";
import type { Action } from "../protocol/actions.js";
import type { RuntimeCapabilities } from "./types.js";

/** Throws UNSUPPORTED naming `what` and the capability when `capabilities[cap]` is off. */
export function requireCapability(
  capabilities: RuntimeCapabilities,
  cap: keyof RuntimeCapabilities,
  backend: string,
  what: string,
): void {
  if (!capabilities[cap]) {
    throw new RuntimeError(
      "UNSUPPORTED",
      `The ${backend} backend does not support ${what} (capability "${cap}" is off).`,
    );
  }
}

/**
 * Refuses, before anything is sent, an action the backend cannot run: `run_ipython` without `ipython`, input to
 * a running command without `stdin`, and `call_tool_mcp` always (the host runs MCP tools, never a sandbox).
 */
export function checkActionCapabilities(
  action: Action,
  capabilities: RuntimeCapabilities,
  backend: string,
): void {
  if (action.action === "run_ipython") requireCapability(capabilities, "ipython", backend, "run_ipython");
  if (action.action === "run" && action.args.is_input)
    requireCapability(capabilities, "stdin", backend, "input to a running command");
  if (action.action === "call_tool_mcp") {
    throw new RuntimeError(
      "UNSUPPORTED",
      "call_tool_mcp actions run on the host, not in the sandbox; call your MCP client directly.",
    );
  }
}
