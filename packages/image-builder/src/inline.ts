import { createHash } from "node:crypto";
import { posix } from "node:path";
import { shellQuote } from "./shell.js";

/**
 * Base64 characters written per `RUN` command (36,000 bytes of content). Docker reads a Dockerfile line with a
 * 64 KiB buffer and Linux caps one `sh -c` argument at 128 KiB, so each chunk stays well below both.
 */
export const INLINE_CHUNK_BASE64_CHARS = 48_000;

/**
 * `RUN` commands (without the `RUN `) that write `bytes` to `path` with `mode`, using only `mkdir`,
 * `printf`, `base64 -d`, `cat`, `rm` and `chmod` (present in Debian, Ubuntu, Alpine/busybox and most bases).
 * Content of one chunk is written directly; larger content goes through numbered part files that are joined
 * and removed, so each layer holds each byte once.
 */
export function inlineFileCommands(path: string, bytes: Uint8Array, mode: string): string[] {
  const file = shellQuote(path);
  const dir = shellQuote(posix.dirname(path));
  const chmod = `chmod ${mode} ${file}`;
  if (bytes.length === 0) return [`mkdir -p ${dir} && : > ${file} && ${chmod}`];
  const b64 = Buffer.from(bytes).toString("base64");
  if (b64.length <= INLINE_CHUNK_BASE64_CHARS) {
    return [`mkdir -p ${dir} && printf '%s' '${b64}' | base64 -d > ${file} && ${chmod}`];
  }
  const partsDir = `/tmp/agent-runtime-inline-${createHash("sha256").update(path).digest("hex").slice(0, 16)}`;
  const parts: string[] = [];
  const commands: string[] = [];
  for (let offset = 0, index = 0; offset < b64.length; offset += INLINE_CHUNK_BASE64_CHARS, index++) {
    const part = `${partsDir}/${String(index).padStart(5, "0")}`;
    parts.push(part);
    const chunk = b64.slice(offset, offset + INLINE_CHUNK_BASE64_CHARS);
    commands.push(
      `${index === 0 ? `rm -rf ${partsDir} && ` : ""}mkdir -p ${partsDir} && printf '%s' '${chunk}' > ${part}`,
    );
  }
  commands.push(
    `mkdir -p ${dir} && cat ${parts.join(" ")} | base64 -d > ${file} && rm -rf ${partsDir} && ${chmod}`,
  );
  return commands;
}
