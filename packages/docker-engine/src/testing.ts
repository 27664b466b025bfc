import { DockerEngine } from "./client.js";

/** What {@link engineForTests} found: an engine that answers, or why the engine tests skip. */
export type TestEngine =
  | { engine: DockerEngine; baseImage: string; skip: undefined }
  | { engine: undefined; baseImage: string; skip: string };

/**
 * The container engine the test suites of this repository use: `AGENT_RUNTIME_DOCKER_HOST`, else `DOCKER_HOST`,
 * else the usual sockets. Resolves with a reason to skip when none answers `/_ping`, unless
 * `AGENT_RUNTIME_TEST_REQUIRE_ENGINE=1` (set by `.ci/run`, which starts one), where it throws: in CI no engine
 * test may skip. `baseImage` is the clean Debian image the tests build on (`AGENT_RUNTIME_TEST_BASE_IMAGE`,
 * default `localhost/agent-runtime/debian-trixie-min`, made by `.ci/engine` with debootstrap).
 */
export async function engineForTests(): Promise<TestEngine> {
  const baseImage = process.env.AGENT_RUNTIME_TEST_BASE_IMAGE || "localhost/agent-runtime/debian-trixie-min";
  const address = process.env.AGENT_RUNTIME_DOCKER_HOST || process.env.DOCKER_HOST || undefined;
  const required = process.env.AGENT_RUNTIME_TEST_REQUIRE_ENGINE === "1";
  let reason: string;
  try {
    const engine = new DockerEngine(address ? { address } : {});
    await engine.ping(3000);
    const base = await engine.inspectImage(baseImage);
    if (base) return { engine, baseImage, skip: undefined };
    reason = `the engine at ${engine.address} has no base image ${baseImage} (make it with .ci/engine, or set AGENT_RUNTIME_TEST_BASE_IMAGE)`;
  } catch (err) {
    reason = `no container engine answers (${err instanceof Error ? err.message : String(err)}); start one with .ci/engine, or set AGENT_RUNTIME_DOCKER_HOST`;
  }
  if (required) throw new Error(`AGENT_RUNTIME_TEST_REQUIRE_ENGINE=1 but ${reason}`);
  return { engine: undefined, baseImage, skip: reason };
}
