import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { FileErrorId, type FileReadAction, type FileWriteAction } from "@agent-runtime/runtime-core";
import { isBinaryBuffer, MEDIA_TYPES } from "./file-utils.js";
import { errorObservation, readObservation, type WireObservation, writeObservation } from "./observations.js";

/** `read` refuses larger files (they would not fit an observation anyway). */
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
 * `ERROR_BINARY_FILE`.
 */
export function readFileAction(action: FileReadAction, ctx: FileActionContext): WireObservation {
  const path = resolve(ctx.cwd, action.args.path);
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch (err) {
    if (isCode(err, "ENOENT") || isCode(err, "ENOTDIR")) {
      return errorObservation(
        `File not found: ${path}. Your current working directory is ${ctx.cwd}.`,
        FileErrorId.NOT_FOUND,
      );
    }
    return errorObservation(`Cannot read ${path}: ${messageOf(err)}`, FileErrorId.IO);
  }
  if (stat.isDirectory())
    return errorObservation(
      `Path is a directory: ${path}. You can only read files`,
      FileErrorId.IS_DIRECTORY,
    );
  if (stat.size > MAX_READ_BYTES) {
    return errorObservation(
      `File too large to read: ${path} is ${stat.size} bytes (limit ${MAX_READ_BYTES}). Read parts of it with a run action (head, tail, sed -n '10,20p').`,
    );
  }
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    if (isCode(err, "EACCES") || isCode(err, "EPERM"))
      return errorObservation(`Permission error on ${path}: ${messageOf(err)}`, FileErrorId.PERMISSION);
    return errorObservation(`Cannot read ${path}: ${messageOf(err)}`, FileErrorId.IO);
  }
  const media = MEDIA_TYPES[extname(path).toLowerCase()];
  if (media) return readObservation(path, `data:${media};base64,${buf.toString("base64")}`, "default");
  if (isBinaryBuffer(buf)) return errorObservation("ERROR_BINARY_FILE", FileErrorId.BINARY);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    return errorObservation(`File could not be decoded as utf-8: ${path}.`, FileErrorId.DECODE);
  }
  return readObservation(path, sliceLines(text, action.args.start, action.args.end), "default");
}

/**
 * `write`: the whole file, or lines `start..end` (0-based, end exclusive) of an existing one replaced. Every
 * written line ends with a newline; unlike OpenHands, a trailing newline in `content` is not doubled and empty
 * content writes no line. Parents are created; an existing file keeps its mode and owner; a new one gets 0664
 * and the sandbox user as owner.
 */
export function writeFileAction(action: FileWriteAction, ctx: FileActionContext): WireObservation {
  const path = resolve(ctx.cwd, action.args.path);
  const insert = contentLines(action.args.content);
  try {
    mkdirSync(dirname(path), { recursive: true });
    let existing: string | undefined;
    try {
      if (statSync(path).isDirectory())
        return errorObservation(
          `Path is a directory: ${path}. You can only write to files`,
          FileErrorId.IS_DIRECTORY,
        );
      existing = new TextDecoder("utf-8", { fatal: true }).decode(readFileSync(path));
    } catch (err) {
      if (err instanceof TypeError)
        return errorObservation(`File could not be decoded as utf-8: ${path}`, FileErrorId.DECODE);
      if (!isCode(err, "ENOENT")) throw err;
    }
    if (existing === undefined) {
      writeFileSync(path, insert.join(""));
      chmodSync(path, 0o664);
      if (ctx.owner) chownSync(path, ctx.owner.uid, ctx.owner.gid);
    } else {
      // Rewriting in place keeps the inode, so mode and owner stay as they were.
      writeFileSync(
        path,
        spliceLines(splitKeepEnds(existing), insert, action.args.start, action.args.end).join(""),
      );
    }
  } catch (err) {
    if (isCode(err, "EACCES") || isCode(err, "EPERM"))
      return errorObservation(`Permission error on ${path}: ${messageOf(err)}`, FileErrorId.PERMISSION);
    if (isCode(err, "ENOTDIR"))
      return errorObservation(`File not found: ${path} (a parent is not a directory)`, FileErrorId.NOT_FOUND);
    if (isCode(err, "EISDIR"))
      return errorObservation(
        `Path is a directory: ${path}. You can only write to files`,
        FileErrorId.IS_DIRECTORY,
      );
    return errorObservation(`Cannot write ${path}: ${messageOf(err)}`, FileErrorId.IO);
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

function isCode(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
