import type { DockerEngine } from "./client.js";
import { codeOfStatus, DockerEngineError, engineMessage } from "./errors.js";
import { JsonLines, tailLines } from "./streams.js";
import { type TarEntry, tarArchive } from "./tar.js";

/** Options of {@link DockerEngine.build}. */
export interface BuildOptions {
  /** The build context: files (a `Dockerfile` among them) or a ready tar archive. */
  context: readonly TarEntry[] | Buffer;
  /** The tag the image gets (`name:tag`). */
  tag: string;
  /** Labels put on the image. */
  labels?: Record<string, string>;
  /** Deadline of the whole build, in ms. @default 1200000 (20 minutes) */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Each line of the build's log, as it comes. */
  onLog?: (line: string) => void;
}

/** Lines of a failed build's log kept in its error. */
const BUILD_LOG_TAIL_LINES = 30;

/**
 * `DockerEngine.build`: posts the context as a tar archive to `/build`, parses the JSON progress as it streams
 * (log lines to `onLog`, the image id from `aux.ID`, a failed step from `error`) and maps the outcome.
 */
export async function buildImage(
  engine: DockerEngine,
  options: BuildOptions,
): Promise<{ imageId: string; log: string }> {
  const context = Buffer.isBuffer(options.context) ? options.context : tarArchive(options.context);
  const timeoutMs = options.timeoutMs ?? 1_200_000;
  const res = await engine.openStream("POST", "/build", {
    query: {
      t: options.tag,
      rm: true,
      forcerm: true,
      ...(options.labels ? { labels: JSON.stringify(options.labels) } : {}),
    },
    body: context,
    contentType: "application/x-tar",
    timeoutMs,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const log: string[] = [];
  let error: string | undefined;
  let imageId: string | undefined;
  const lines = new JsonLines((m) => {
    if (typeof m.stream === "string") {
      log.push(m.stream);
      for (const line of m.stream.split("\n")) if (line) options.onLog?.(line);
    }
    if (typeof m.error === "string") error = m.error;
    const aux = m.aux as { ID?: unknown } | undefined;
    if (typeof aux?.ID === "string") imageId = aux.ID;
  });
  try {
    for await (const chunk of res) lines.write(chunk as Buffer);
    lines.end();
  } catch (err) {
    if (err instanceof DockerEngineError) {
      if (err.code === "TIMEOUT") {
        throw new DockerEngineError(
          "TIMEOUT",
          `Building ${options.tag} took longer than ${timeoutMs} ms. Last lines of the build log:\n${tailLines(log.join(""), BUILD_LOG_TAIL_LINES)}`,
        );
      }
      throw err;
    }
    throw engine.unreachable(err);
  }
  const text = log.join("");
  if ((res.statusCode ?? 0) >= 400) {
    throw new DockerEngineError(
      (res.statusCode ?? 0) === 500 ? "FAILED_PRECONDITION" : codeOfStatus(res.statusCode ?? 500),
      `Building ${options.tag} failed: ${error ?? engineMessage(Buffer.from(text))}`,
      { status: res.statusCode ?? 0 },
    );
  }
  if (error !== undefined) {
    throw new DockerEngineError(
      "FAILED_PRECONDITION",
      `Building ${options.tag} failed: ${error.trim()}\nLast lines of the build log:\n${tailLines(text, BUILD_LOG_TAIL_LINES)}`,
    );
  }
  if (imageId === undefined) {
    const inspected = await engine.inspectImage(options.tag);
    if (!inspected) {
      throw new DockerEngineError(
        "INTERNAL",
        `Building ${options.tag} ended without an image. Last lines of the build log:\n${tailLines(text, BUILD_LOG_TAIL_LINES)}`,
      );
    }
    imageId = inspected.Id;
  }
  return { imageId, log: text };
}
