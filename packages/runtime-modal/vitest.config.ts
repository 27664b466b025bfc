import { defineProject } from "vitest/config";
import { sharedProject } from "../../vitest.shared.ts";

// test/setup.ts isolates every test file from developer Modal config before the SDK is imported.
export default defineProject(sharedProject(import.meta.dirname, { setupFiles: ["./test/setup.ts"] }));
