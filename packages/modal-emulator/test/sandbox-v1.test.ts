import { describe } from "vitest";
import { sandboxFlowSuite } from "./flow.js";

// MODAL_SANDBOX_V2=0: SandboxCreate + SandboxGetTaskId, SecretGetOrCreate for env, SandboxGetLogs for stdout,
// SandboxStdinWrite, SandboxGetTunnels, and the V1 list and fromName RPCs.
describe("V1 sandboxes through the real SDK", () => sandboxFlowSuite("v1"));
