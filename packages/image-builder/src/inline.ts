import { createHash } from "node:crypto";
import { posix } from "node:path";
import { deflateRawSync } from "node:zlib";
import { shellQuote } from "./shell.js";

/**
 * The most bytes one generated `RUN` line may have (16 KiB). Modal documents no limit on a Dockerfile command,
 * so this keeps a wide margin under the limits that are known: Docker's Dockerfile parser reads a line with Go's
 * `bufio.Scanner` and fails at 64 KiB ("dockerfile line greater than max allowed size of 65536",
 * moby/moby#35429); build-log readers that scan output line by line hit the same 64 KiB wall when a builder
 * echoes the step (`Step 3/9 : RUN ...`, see grammarly/rocker#54); Linux caps one `sh -c` argument at
 * 128 KiB (`MAX_ARG_STRLEN`). A quarter of the smallest of them leaves room for a builder's own prefix or
 * escaping, and keeps the build log readable.
 */
export const MAX_INLINE_RUN_BYTES = 16 * 1024;

/** Base64 characters written per `RUN` command (12,000 bytes of content), so each line stays under {@link MAX_INLINE_RUN_BYTES}. */
export const INLINE_CHUNK_BASE64_CHARS = 16_000;

/**
 * Where content too large for one `RUN` is staged, one directory per target file. A stable path in the image,
 * not `/tmp`: whether a builder keeps `/tmp` between steps is not documented for Modal (a tmpfs per step would
 * lose it), while every builder keeps what a step wrote under `/opt` in that step's layer. A build restarted
 * from a cached step finds the parts the earlier steps wrote.
 */
export const INLINE_PARTS_ROOT = "/opt/agent-runtime/parts";

/** Options of {@link inlineFileCommands}. */
export interface InlineFileOptions {
  /**
   * Compress the content with raw deflate on this machine and inflate it in the image with `node` (which must
   * be on the image's PATH by then), checking the result's sha256. For the action-server bundle: about a sixth
   * of the bytes (and of the `RUN` lines).
   * @default false
   */
  inflateWithNode?: boolean;
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** A `node -e` program: base64 of raw deflate on stdin -> the file argv[2], if its sha256 is argv[1]. */
const INFLATE =
  'const f=require("fs"),z=require("zlib"),c=require("crypto");' +
  'let b;try{b=z.inflateRawSync(Buffer.from(f.readFileSync(0,"utf8"),"base64"))}catch{b=Buffer.alloc(0)}' +
  'const h=c.createHash("sha256").update(b).digest("hex");' +
  'if(h!==process.argv[1]){console.error("agent-runtime image-builder: "+process.argv[2]+" came out with sha256 "+h+", expected "+process.argv[1]+"; rebuild the image without its cache");process.exit(1)}' +
  "f.writeFileSync(process.argv[2],b)";

/**
 * `RUN` commands (without the `RUN `) that write `bytes` to `path` with `mode`, each line at most
 * {@link MAX_INLINE_RUN_BYTES}. Plain content uses only `mkdir`, `printf`, `base64 -d`, `cat`, `wc`, `rm` and
 * `chmod` (present in Debian, Ubuntu, Alpine/busybox and most bases); `inflateWithNode` uses `node` instead of
 * `base64 -d`. Content of one chunk is written directly. Larger content goes to numbered parts under
 * {@link INLINE_PARTS_ROOT} (one `RUN` each, so a build restarted from a cached step keeps them), then one
 * `RUN` checks that every part is there (their total length), joins them into the file and removes them.
 */
export function inlineFileCommands(
  path: string,
  bytes: Uint8Array,
  mode: string,
  options: InlineFileOptions = {},
): string[] {
  const file = shellQuote(path);
  const dir = shellQuote(posix.dirname(path));
  const chmod = `chmod ${mode} ${file}`;
  if (bytes.length === 0) return [`mkdir -p ${dir} && : > ${file} && ${chmod}`];
  const payload = options.inflateWithNode ? deflateRawSync(bytes, { level: 9 }) : bytes;
  const b64 = Buffer.from(payload).toString("base64");
  const decode = options.inflateWithNode
    ? `node -e ${shellQuote(INFLATE)} ${sha256(bytes)} ${file}`
    : `base64 -d > ${file}`;
  if (b64.length <= INLINE_CHUNK_BASE64_CHARS) {
    return [`mkdir -p ${dir} && printf '%s' '${b64}' | ${decode} && ${chmod}`];
  }
  const partsDir = `${INLINE_PARTS_ROOT}/${sha256(Buffer.from(path)).slice(0, 16)}`;
  const commands: string[] = [];
  for (let offset = 0, index = 0; offset < b64.length; offset += INLINE_CHUNK_BASE64_CHARS, index++) {
    const part = `${partsDir}/${String(index).padStart(5, "0")}`;
    const chunk = b64.slice(offset, offset + INLINE_CHUNK_BASE64_CHARS);
    commands.push(
      `${index === 0 ? `rm -rf ${partsDir} && ` : ""}mkdir -p ${partsDir} && printf '%s' '${chunk}' > ${part}`,
    );
  }
  // The parts' names sort in order, so the glob joins them in order; a lost part shows as a short total.
  const missing =
    `echo "agent-runtime image-builder: the parts of ${path.replace(/["$`\\]/g, "")} under ${partsDir} hold $n of ${b64.length} ` +
    'base64 characters (a build step before this one was lost); rebuild the image without its cache" >&2; exit 1';
  commands.push(
    `n=$(cat ${partsDir}/* | wc -c) && { [ "$n" -eq ${b64.length} ] || { ${missing}; }; } && ` +
      `mkdir -p ${dir} && cat ${partsDir}/* | ${decode} && rm -rf ${partsDir} && ${chmod}`,
  );
  return commands;
}
