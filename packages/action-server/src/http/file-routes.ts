import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, rename, rm, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { basename, isAbsolute, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import busboy from "busboy";
import { type ExtractLimits, extractZip, UnsafeZipError } from "../zip/extract.js";
import { ZipFormatError, ZipLimitError } from "../zip/zip-reader.js";
import { collectZipSources, writeZip, type ZipSource } from "../zip/zip-stream.js";
import { HttpError, invalidRequest } from "./http-error.js";

/** 400 when a path parameter holds a NUL byte (no path can; the fs functions would throw a TypeError). */
export function assertNoNul(value: string, parameter: string): void {
  if (value.includes("\0")) {
    throw new HttpError(
      400,
      `Invalid ${parameter} ${JSON.stringify(value)}: it contains a NUL byte (\\u0000), which no path can hold. Remove it and retry.`,
    );
  }
}

/**
 * `POST /list_files`: directories first (with a trailing `/`), then files, each group sorted case-insensitively,
 * dotfiles included. Relative paths join the initial working directory; a missing path or a file gives `[]`.
 */
export async function listFiles(body: unknown, workingDir: string): Promise<string[]> {
  // No body at all is a client error (OpenHands' server fails on it); `{}` lists the initial working directory.
  if (body === undefined)
    throw invalidRequest([
      'body: required, a JSON object like {"path": "/workspace"} or {} for the working dir',
    ]);
  let requested: string | undefined;
  if (body !== null) {
    if (typeof body !== "object" || Array.isArray(body))
      throw new HttpError(422, "Invalid request parameters", {
        errors: ['body: expected an object like {"path": "/workspace"}'],
      });
    const p = (body as { path?: unknown }).path;
    if (p !== undefined && p !== null && typeof p !== "string") {
      throw new HttpError(422, "Invalid request parameters", { errors: ["path: expected a string"] });
    }
    requested = p ?? undefined;
    if (requested) assertNoNul(requested, "path");
  }
  const dir = requested ? resolve(workingDir, requested) : workingDir;
  let names: string[];
  try {
    if (!(await stat(dir)).isDirectory()) return [];
    names = await readdir(dir);
  } catch {
    return [];
  }
  const dirs: string[] = [];
  const files: string[] = [];
  for (const name of names) {
    let isDir = false;
    try {
      isDir = (await stat(join(dir, name))).isDirectory();
    } catch {
      // dangling symlink: a file
    }
    if (isDir) dirs.push(`${name}/`);
    else files.push(name);
  }
  const byLower = (a: string, b: string) => {
    const x = a.toLowerCase();
    const y = b.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  };
  return [...dirs.sort(byLower), ...files.sort(byLower)];
}

/** Limits of {@link uploadFile}. */
export interface UploadOptions {
  maxUploadBytes: number;
  /** Limits of zip extraction (413 beyond any). */
  zip: ExtractLimits;
}

/**
 * `POST /upload_file?destination=<abs>&recursive=<bool>`: multipart field `file`. A zip (recursive, or any
 * `.zip`) is checked entry by entry and extracted into `destination`, all or nothing (unsafe or corrupt: 400;
 * over a limit of `options.zip`: 413); anything else is saved as `destination/<filename>` (written to a
 * temporary name, then renamed).
 */
export async function uploadFile(
  req: IncomingMessage,
  url: URL,
  options: UploadOptions,
): Promise<{ filename: string; destination: string; recursive: boolean }> {
  const destination = url.searchParams.get("destination");
  if (!destination)
    throw new HttpError(
      400,
      "Missing query parameter destination: pass an absolute directory, e.g. ?destination=/workspace",
    );
  assertNoNul(destination, "destination");
  if (!isAbsolute(destination))
    throw new HttpError(
      400,
      `Destination must be an absolute path, got ${JSON.stringify(destination)}: pass a directory like /workspace/data`,
    );
  const recursive = parseBool(url.searchParams.get("recursive"), "recursive");
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > options.maxUploadBytes + 64 * 1024)
    throw uploadTooLarge(options.maxUploadBytes);
  const contentType = req.headers["content-type"] ?? "";
  if (!contentType.toLowerCase().startsWith("multipart/form-data")) {
    throw invalidRequest([
      "file: required, send a multipart/form-data body with the file in a field named `file`",
    ]);
  }
  const dest = resolve(destination);
  if (await existsAsNonDirectory(dest))
    throw new HttpError(400, `Destination ${dest} exists and is not a directory`);
  const work = await mkdtemp(join(tmpdir(), "ar-upload-"));
  let temp: string | undefined;
  try {
    // A zip goes to a private temporary file; anything else straight next to its target, then an atomic rename.
    const received = await receiveFile(req, options.maxUploadBytes, async (filename) => {
      if (recursive || filename.toLowerCase().endsWith(".zip")) return join(work, "upload.zip");
      await mkdir(dest, { recursive: true });
      temp = join(dest, `.${filename}.upload-${randomBytes(4).toString("hex")}`);
      return temp;
    });
    const filename = received.filename;
    if (received.path !== temp) {
      try {
        await extractZip(received.path, dest, options.zip);
      } catch (err) {
        if (err instanceof UnsafeZipError)
          throw new HttpError(400, `Unsafe zip, nothing was extracted: ${err.message}`);
        if (err instanceof ZipFormatError)
          throw new HttpError(
            400,
            `Not a valid zip file (${filename}), nothing was extracted: ${err.message}`,
          );
        if (err instanceof ZipLimitError)
          throw new HttpError(413, `Zip refused, nothing was extracted: ${err.message}`);
        throw err;
      }
    } else {
      const target = join(dest, filename);
      if (await existsAsDirectory(target))
        throw new HttpError(400, `${target} is a directory; cannot replace it with a file`);
      await rename(received.path, target);
    }
    return { filename, destination, recursive };
  } finally {
    if (temp) await rm(temp, { force: true });
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * `GET /download_files?path=<abs>`: a streamed zip of the directory's contents, or of the one file (every
 * name kept, byte for byte). `HEAD` checks the same and answers the headers only.
 */
export async function downloadFiles(
  req: IncomingMessage,
  url: URL,
  res: ServerResponse,
  zipLevel: number,
): Promise<void> {
  const path = url.searchParams.get("path");
  if (!path)
    throw invalidRequest(["path: required query parameter, an absolute path, e.g. ?path=/workspace"]);
  assertNoNul(path, "path");
  if (!isAbsolute(path)) throw new HttpError(400, `Path must be absolute, got ${JSON.stringify(path)}`);
  try {
    await lstat(path);
  } catch {
    throw new HttpError(404, `File not found: ${path}`);
  }
  let sources: ZipSource[];
  try {
    sources = await collectZipSources(path);
  } catch (err) {
    if (err instanceof ZipLimitError) throw new HttpError(413, err.message);
    throw err;
  }
  const name = basename(path) || "root";
  res.writeHead(200, {
    "content-type": "application/zip",
    "content-disposition": `attachment; filename="${name.replace(/["\\\r\n]/g, "_")}.zip"`,
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  try {
    await writeZip(sources, res, zipLevel);
    res.end();
  } catch (err) {
    // Headers are gone: the only honest signal left is a broken stream.
    res.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

async function receiveFile(
  req: IncomingMessage,
  maxBytes: number,
  targetFor: (filename: string) => Promise<string>,
): Promise<{ path: string; filename: string }> {
  return new Promise((resolvePromise, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: req.headers,
        defParamCharset: "utf8",
        limits: { files: 1, fileSize: maxBytes },
      });
    } catch (err) {
      reject(
        new HttpError(400, `Malformed multipart body: ${err instanceof Error ? err.message : String(err)}`),
      );
      return;
    }
    let result: { path: string; filename: string } | undefined;
    let writing: Promise<void> | undefined;
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      req.resume();
      reject(err);
    };
    bb.on("file", (field, stream, info) => {
      if (field !== "file") {
        stream.resume();
        return;
      }
      const filename = basename(info.filename ?? "").trim();
      if (!filename || filename === "." || filename === "..") {
        stream.resume();
        fail(new HttpError(400, "The uploaded file has no usable filename"));
        return;
      }
      if (filename.includes("\0")) {
        stream.resume();
        fail(
          new HttpError(
            400,
            `The uploaded file name ${JSON.stringify(filename)} contains a NUL byte; rename it.`,
          ),
        );
        return;
      }
      stream.on("limit", () => fail(uploadTooLarge(maxBytes)));
      // Hold the data until the target exists (creating it is asynchronous); busboy waits meanwhile.
      stream.pause();
      writing = targetFor(filename).then((path) =>
        pipeline(stream, createWriteStream(path, { highWaterMark: 1 << 20 })).then(() => {
          result = { path, filename };
        }),
      );
      writing.catch((err: Error) => {
        stream.resume();
        fail(err);
      });
    });
    bb.on("error", (err: Error) => fail(new HttpError(400, `Malformed multipart body: ${err.message}`)));
    bb.on("close", () => {
      if (failed) return;
      const finish = () => {
        if (failed) return;
        if (!result) reject(invalidRequest(["file: required, the multipart body has no field named `file`"]));
        else resolvePromise(result);
      };
      if (writing) writing.then(finish, () => {});
      else finish();
    });
    req.on("aborted", () => fail(new HttpError(400, "The upload was aborted by the client")));
    req.pipe(bb);
  });
}

function uploadTooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    `Upload too large: the limit is ${maxBytes} bytes (set ACTION_SERVER_MAX_UPLOAD_BYTES on the server to raise it).`,
  );
}

function parseBool(value: string | null, name: string): boolean {
  if (value === null || value === "") return false;
  const v = value.toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new HttpError(400, `Query parameter ${name} must be true or false, got ${JSON.stringify(value)}`);
}

async function existsAsNonDirectory(path: string): Promise<boolean> {
  try {
    return !(await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function existsAsDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
