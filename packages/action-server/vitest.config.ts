import { defineProject } from "vitest/config";
import { sharedProject } from "../../vitest.shared.ts";

// test/global-setup.ts builds dist/bin.cjs once (tests spawn the real bundle).
export default defineProject(sharedProject(import.meta.dirname, { globalSetup: ["test/global-setup.ts"] }));
