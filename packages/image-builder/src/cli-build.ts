/**
 * The CLI's `build` command: builds a spec through a container engine, the build log on stderr and
 * `{ image, imageId, built }` on stdout.
 */
import { buildWithEngine } from "./engine-build.js";
import type { ImageSpec } from "./spec.js";

/** The engines `build --engine` accepts: `docker` is any engine speaking the Docker Engine API (Docker, Podman's service). */
export const CLI_ENGINES = ["docker"] as const;

/** The command-line values `build` reads. */
export interface BuildCommandValues {
  engine?: string | undefined;
  "engine-address"?: string | undefined;
  repository?: string | undefined;
  force?: boolean | undefined;
  "timeout-ms"?: string | undefined;
}

/** A wrong command line (exit code 2), as opposed to a wrong spec or a failed build (exit code 1). */
export class CliUsageError extends Error {}

/** Checks `build`'s options before the spec is read; throws {@link CliUsageError}. */
export function checkBuildValues(values: BuildCommandValues): { timeoutMs: number | undefined } {
  const engine = values.engine ?? "docker";
  if (!(CLI_ENGINES as readonly string[]).includes(engine)) {
    throw new CliUsageError(
      `--engine ${JSON.stringify(engine)} is not supported; the allowed value is ${CLI_ENGINES.join(", ")} (Docker, or Podman's Docker-compatible service)`,
    );
  }
  let timeoutMs: number | undefined;
  if (values["timeout-ms"] !== undefined) {
    timeoutMs = Number(values["timeout-ms"]);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new CliUsageError("--timeout-ms must be a positive integer number of milliseconds");
    }
  }
  if (values["engine-address"] !== undefined && values["engine-address"].trim() === "") {
    throw new CliUsageError("--engine-address must not be empty");
  }
  return { timeoutMs };
}

/** Runs `build`: streams the build log to `stderr`, prints the result as JSON on `stdout`. */
export async function runBuildCommand(
  spec: ImageSpec,
  values: BuildCommandValues,
  io: { stdout(text: string): void; stderr(text: string): void },
  maxInlineBytes: number | undefined,
): Promise<void> {
  const { timeoutMs } = checkBuildValues(values);
  const { image, imageId, built } = await buildWithEngine(spec, {
    ...(values["engine-address"] !== undefined ? { engine: values["engine-address"] } : {}),
    ...(values.repository !== undefined ? { repository: values.repository } : {}),
    ...(values.force ? { force: true } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(maxInlineBytes !== undefined ? { maxInlineBytes } : {}),
    onLog: (line) => io.stderr(`${line}\n`),
  });
  io.stdout(`${JSON.stringify({ image, imageId, built }, null, 2)}\n`);
}
