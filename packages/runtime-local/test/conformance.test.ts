import { runRuntimeConformance } from "@agent-runtime/runtime-core/testing";
import { localRuntime } from "../src/index.js";
import { bubblewrapUsable } from "../src/sandbox-process.js";

for (const isolation of ["none", "bubblewrap"] as const) {
  if (isolation === "bubblewrap" && !bubblewrapUsable()) continue;
  const capabilities = localRuntime({ isolation }).capabilities;
  runRuntimeConformance({
    name: `runtime-local (isolation: ${isolation})`,
    capabilities,
    create: ({ sessionId, context, noChangeTimeoutSeconds }) =>
      localRuntime({ isolation, noChangeTimeoutSeconds }, context).create({ sessionId }),
    attach: (handle, { context }) => localRuntime({ isolation }, context).attach(handle),
  });
}
