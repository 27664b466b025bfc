import { describe } from "vitest";
import { sandboxFlowSuite } from "./flow.js";

// The SDK's default mode: SandboxCreateV2 (secrets inline, task id and router access in the reply), V2 RPCs.
describe("V2 sandboxes through the real SDK", () => sandboxFlowSuite("v2"));
