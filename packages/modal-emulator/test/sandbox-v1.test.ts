import { describe } from "vitest";
import { sandboxFlowSuite } from "./flow.js";

// MODAL_SANDBOX_V2=0: SandboxCreate + SandboxGetTaskId, SecretGetOrCreate for env, SandboxGetLogs for stdout,
// SandboxStdinWrite, SandboxGetTunnels, and the V1 list and fromName RPCs.
describe("V1 sandboxes through the real SDK", () => sandboxFlowSuite("v1"));

// The V1 path implements everything strict mode refuses on V2 (names, idle timeout, tags, list): the same flow
// passes against the strict emulator.
describe("V1 sandboxes through the real SDK, strict emulator", () =>
  sandboxFlowSuite("v1", { strict: true }));
