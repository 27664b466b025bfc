import { describe } from "vitest";
import { sandboxFlowSuite } from "./flow.js";

// The SDK's default mode: SandboxCreateV2 (secrets inline, task id and router access in the reply), V2 RPCs.
// The lenient emulator: this flow uses names, tags, idle timeouts and list on V2, which strict mode refuses
// (strict-sandboxes.test.ts covers those refusals).
describe("V2 sandboxes through the real SDK, lenient emulator", () =>
  sandboxFlowSuite("v2", { strict: false }));
