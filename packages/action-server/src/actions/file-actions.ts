import { mkdir } from "node:fs/promises";
import { dirname, extname, resolve } from "node:path";
import type { FileReadAction, FileWriteAction } from "@agent-runtime/runtime-core";
import { isBinaryBuffer, MEDIA_TYPES } from "./file-utils.js";
import { errorObservation, readObservation, type WireObservation, writeObservation } from "./observations.js";
import {
  codeOf,
  FileAccessError,
  openRegularFile,
  readAtMost,
  replaceContent,
  ServerFileErrorId,
  toFileAccessError,
} from "./safe-fs.js";

/** `read` refuses larger files (they would not fit an observation anyway); counted while reading. */
export const MAX_READ_BYTES = 64 * 1024 * 1024;

/** Where relative paths resolve and who owns new files. */
export interface FileActionContext {
  /** The shell's current working directory. */
  cwd: string;
  /** Owner of new files (only applied when the server runs as root). */
  owner: { uid: number; gid: number } | undefined;
}

/**
 * `read` (default implementation): relative paths resolve against the shell's cwd; `start`/`end` are 0-based
 * lines with `end` exclusive; images, PDFs and videos come back as data URLs; binary files give
 * `ERROR_BINARY_FILE`. Only regular files are read (devices, FIFOs and sockets give NOT_A_REGULAR_FILE), without
 * blocking, and at most {@link MAX_READ_BYTES} bytes are ever read whatever `stat` says.
 */
export async function readFileAction(
  action: FileReadAction,
  ctx: FileActionContext,
): Promise<WireObservation> {
  const path = resolve(ctx.cwd, action.args.path);
  let opened: Awaited<ReturnType<typeof openRegularFile>>;
  try {
    opened = await openRegularFile(path, "read");
  } catch (err) {
    const e = toFileAccessError(err, path);
    if (e.errorId === ServerFileErrorId.NOT_FOUND)
      return errorObservation(
        `File not found: ${path}. Your current working directory is ${ctx.cwd}.`,
        e.errorId,
      );
    if (e.errorId === ServerFileErrorId.IS_DIRECTORY)
      return errorObservation(`Path is a directory: ${path}. You can only read files`, e.errorId);
    return errorObservation(e.message, e.errorId);
  }
  const { handle, stat } = opened;
  const media = MEDIA_TYPES[extname(path).toLowerCase()];
  let buf: Buffer;
  try {
    if (stat.size > MAX_READ_BYTES) return tooLargeToRead(path, `${stat.size} bytes`);
    const read = await readAtMost(
      handle,
      MAX_READ_BYTES,
      media ? undefined : { headBytes: 8192, stop: (head) => isBinaryBuffer(head) },
    );
    if (read.overLimit) return tooLargeToRead(path, `more than ${MAX_READ_BYTES} bytes`);
    buf = read.data;
  } catch (err) {
    const e = toFileAccessError(err, path);
    return errorObservation(
      `Cannot read ${path}: ${e.cause instanceof Error ? e.cause.message : e.message}`,
      e.errorId,
    );
  } finally {
    await handle.close().catch(() => {});
  }
  if (media) return readObservation(path, `data:${media};base64,${buf.toString("base64")}`, "default");
  if (isBinaryBuffer(buf)) return errorObservation("ERROR_BINARY_FILE", ServerFileErrorId.BINARY);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    return errorObservation(`File could not be decoded as utf-8: ${path}.`, ServerFileErrorId.DECODE);
  }
  return readObservation(path, sliceLines(text, action.args.start, action.args.end), "default");
}

function tooLargeToRead(path: string, size: string): WireObservation {
  return errorObservation(
    `File too large to read: ${path} is ${size} (limit ${MAX_READ_BYTES}). Read parts of it with a run action (head, tail, sed -n '10,20p').`,
    ServerFileErrorId.TOO_LARGE,
  );
}

/**
 * `write`: the whole file, or lines `start..end` (0-based, end exclusive) of an existing one replaced. Every
 * written line ends with a newline; unlike OpenHands, a trailing newline in `content` is not doubled and empty
 * content writes no line. Parents are created; an existing file keeps its mode and owner; a new one gets 0664
 * and the sandbox user as owner. Only regular files are written (a FIFO or device target is refused, never
 * opened in a way that blocks); an existing file is read (for the splice) at most {@link MAX_READ_BYTES} bytes.
 */
export async function writeFileAction(
  action: FileWriteAction,
  ctx: FileActionContext,
): Promise<WireObservation> {
  const path = resolve(ctx.cwd, action.args.path);
  const insert = contentLines(action.args.content);
  try {
    await mkdir(dirname(path), { recursive: true });
    let opened: Awaited<ReturnType<typeof openRegularFile>> | undefined;
    try {
      opened = await openRegularFile(path, "update");
    } catch (err) {
      if (!(err instanceof FileAccessError && err.errorId === ServerFileErrorId.NOT_FOUND)) throw err;
    }
    if (!opened) {
      const created = await openRegularFile(path, "create", 0o664);
      try {
        await replaceContent(created.handle, insert.join(""));
        await created.handle.chmod(0o664);
        if (ctx.owner) await created.handle.chown(ctx.owner.uid, ctx.owner.gid);
      } finally {
        await created.handle.close().catch(() => {});
      }
      return writeObservation(path);
    }
    const { handle } = opened;
    try {
      const read = await readAtMost(handle, MAX_READ_BYTES);
      if (read.overLimit) {
        return errorObservation(
          `File too large to rewrite: ${path} has more than ${MAX_READ_BYTES} bytes. Change it with a run action (sed -i, or a script) instead.`,
          ServerFileErrorId.TOO_LARGE,
        );
      }
      let existing: string;
      try {
        existing = new TextDecoder("utf-8", { fatal: true }).decode(read.data);
      } catch {
        return errorObservation(`File could not be decoded as utf-8: ${path}`, ServerFileErrorId.DECODE);
      }
      // Rewriting in place keeps the inode, so mode and owner stay as they were.
      await replaceContent(
        handle,
        spliceLines(splitKeepEnds(existing), insert, action.args.start, action.args.end).join(""),
      );
    } finally {
      await handle.close().catch(() => {});
    }
  } catch (err) {
    const e = toFileAccessError(err, path);
    if (e.errorId === ServerFileErrorId.IS_DIRECTORY)
      return errorObservation(`Path is a directory: ${path}. You can only write to files`, e.errorId);
    if (codeOf(e.cause) === "EEXIST")
      return errorObservation(
        `File not found: ${path} (a parent is not a directory)`,
        ServerFileErrorId.NOT_FOUND,
      );
    if (e.errorId === ServerFileErrorId.IO)
      return errorObservation(`Cannot write ${path}: ${messageOf(e.cause ?? e)}`, e.errorId);
    return errorObservation(e.message, e.errorId);
  }
  return writeObservation(path);
}

/** OpenHands' `read_lines`: clamp `start`, `end` = -1 means to the end. */
function sliceLines(text: string, start: number, end: number): string {
  const lines = splitKeepEnds(text);
  const from = Math.min(Math.max(start, 0), lines.length);
  if (end === -1) return lines.slice(from).join("");
  return lines.slice(from, Math.min(Math.max(end, 0), lines.length)).join("");
}

/** OpenHands' `insert_lines`. */
function spliceLines(original: string[], insert: string[], start: number, end: number): string[] {
  const head = start === 0 ? [] : original.slice(0, start);
  const tail = end === -1 ? [] : original.slice(end);
  return [...head, ...insert, ...tail];
}

function contentLines(content: string): string[] {
  if (content === "") return [];
  const parts = content.split("\n");
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  return parts.map((line) => `${line}\n`);
}

function splitKeepEnds(text: string): string[] {
  if (text === "") return [];
  return text.split(/(?<=\n)/);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
