/**
 * runtime-core: parse + serialize of a 30 KB command observation through the zod schemas, against plain
 * JSON.parse/JSON.stringify of the same bytes in the same run.
 */
import { parseObservation, serializeObservation } from "@agent-runtime/runtime-core";
import { Bench } from "tinybench";
import { report, round } from "./harness.ts";

const content = Array.from({ length: 600 }, (_, i) => `line ${i}: ${"x".repeat(40)}`)
  .join("\n")
  .slice(0, 30_000);
const wire = JSON.stringify({
  observation: "run",
  content,
  message: "Command `cat big.log` executed with exit code 0.",
  success: true,
  extras: {
    command: "cat big.log",
    hidden: false,
    metadata: {
      exit_code: 0,
      pid: -1,
      username: "u",
      hostname: "h",
      working_dir: "/workspace",
      py_interpreter_path: "",
      prefix: "",
      suffix: "\n[The command completed with exit code 0.]",
    },
  },
});

const bench = new Bench({ time: 1500, warmupTime: 300 });
bench
  .add("baseline: JSON.parse + JSON.stringify", () => {
    JSON.stringify(JSON.parse(wire));
  })
  .add("zod: parseObservation + serializeObservation", () => {
    JSON.stringify(serializeObservation(parseObservation(JSON.parse(wire))));
  });
await bench.run();

const [base, zod] = bench.tasks.map(
  (t) => t.result as { throughput: { mean: number }; latency: { p50?: number; mean: number } },
);
const baseOps = base!.throughput.mean;
const zodOps = zod!.throughput.mean;
report("runtime-core", [
  {
    case: `baseline JSON (${wire.length} bytes)`,
    opsPerSec: round(baseOps, 0),
    p50Ms: round(base!.latency.p50 ?? base!.latency.mean, 4),
  },
  {
    case: "zod schemas",
    opsPerSec: round(zodOps, 0),
    p50Ms: round(zod!.latency.p50 ?? zod!.latency.mean, 4),
    slowdownVsBaseline: round(baseOps / zodOps, 2),
  },
]);
