import { type FSWatcher, readFileSync, type Stats, watch } from "node:fs";
import {
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  rmdir,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { posix } from "node:path";
import { ExecRecord } from "./exec.js";
import type { HostView } from "./isolation.js";

/** The argv[0] the SDK's `sb.filesystem.*` execs; the emulator serves it in-process. */
export const FS_TOOLS_PATH = "/__modal/.bin/modal-sandbox-fs-tools";

/** `error_kind` values the SDK understands. */
type ErrorKind =
  | "NotFound"
  | "IsDirectory"
  | "NotDirectory"
  | "IsFile"
  | "PermissionDenied"
  | "FileTooLarge"
  | "PathAlreadyExists"
  | "DirectoryNotEmpty"
  | "NotSupported";

class FsToolError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly detail = "",
  ) {
    super(message);
  }
}

const MESSAGES: Record<ErrorKind, string> = {
  NotFound: "No such file or directory",
  IsDirectory: "Is a directory",
  NotDirectory: "Not a directory",
  IsFile: "Is a file",
  PermissionDenied: "Permission denied",
  FileTooLarge: "File too large",
  PathAlreadyExists: "File exists",
  DirectoryNotEmpty: "Directory not empty",
  NotSupported: "Operation not supported",
};

function fail(kind: ErrorKind, detail = ""): never {
  throw new FsToolError(kind, MESSAGES[kind], detail);
}

function fromErrno(err: unknown): FsToolError {
  if (err instanceof FsToolError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const kind: ErrorKind =
    code === "ENOENT"
      ? "NotFound"
      : code === "EISDIR"
        ? "IsDirectory"
        : code === "ENOTDIR"
          ? "NotDirectory"
          : code === "EEXIST"
            ? "PathAlreadyExists"
            : code === "ENOTEMPTY"
              ? "DirectoryNotEmpty"
              : code === "EACCES" || code === "EPERM" || code === "EROFS"
                ? "PermissionDenied"
                : code === "EFBIG"
                  ? "FileTooLarge"
                  : "NotSupported";
  return new FsToolError(kind, MESSAGES[kind], code ?? String(err));
}

/** Where a sandbox's files live on the host. */
export interface FsToolContext {
  view: HostView;
  root: string;
}

interface Resolved {
  sandboxPath: string;
  hostPath: string;
  readOnly: boolean;
}

/** Awaits a filesystem call, mapping errno failures to fs-tools error kinds. */
async function io<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw fromErrno(err);
  }
}

function resolvePath(ctx: FsToolContext, path: unknown): Resolved {
  if (typeof path !== "string" || !posix.isAbsolute(path)) fail("NotSupported", "path must be absolute");
  const sandboxPath = posix.normalize(path);
  const { hostPath, readOnly } = ctx.view.toHost(ctx.root, sandboxPath);
  return { sandboxPath, hostPath, readOnly };
}

function writable(r: Resolved): void {
  if (r.readOnly) fail("PermissionDenied", `${r.sandboxPath} is in the read-only host view`);
}

let names: { users: Map<number, string>; groups: Map<number, string> } | undefined;

function idNames(): { users: Map<number, string>; groups: Map<number, string> } {
  if (names) return names;
  const parse = (file: string): Map<number, string> => {
    const map = new Map<number, string>();
    try {
      for (const line of readFileSync(file, "utf8").split("\n")) {
        const [name, , id] = line.split(":");
        if (name && id) map.set(Number(id), name);
      }
    } catch {
      // no such file: numeric ids
    }
    return map;
  };
  names = { users: parse("/etc/passwd"), groups: parse("/etc/group") };
  return names;
}

function permissions(mode: number): string {
  const bits = "rwxrwxrwx";
  let out = "";
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? bits[i] : "-";
  return out;
}

async function entry(
  name: string,
  sandboxPath: string,
  hostPath: string,
  st: Stats,
): Promise<Record<string, unknown>> {
  const type = st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "directory" : "file";
  const { users, groups } = idNames();
  return {
    name,
    path: sandboxPath,
    type,
    size: st.size,
    mode: st.mode,
    permissions: permissions(st.mode),
    owner: users.get(st.uid) ?? String(st.uid),
    group: groups.get(st.gid) ?? String(st.gid),
    modified_time: Math.floor(st.mtimeMs / 1000),
    symlink_target: type === "symlink" ? await readlink(hostPath) : null,
  };
}

async function makeParents(ctx: FsToolContext, sandboxDir: string): Promise<void> {
  const r = resolvePath(ctx, sandboxDir);
  try {
    const st = await stat(r.hostPath);
    if (!st.isDirectory()) fail("NotDirectory", sandboxDir);
    return;
  } catch (err) {
    if (err instanceof FsToolError) throw err;
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw fromErrno(err);
  }
  writable(r);
  if (sandboxDir !== "/") await makeParents(ctx, posix.dirname(sandboxDir));
  await mkdir(r.hostPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw fromErrno(err);
  });
}

type Command = Record<string, Record<string, unknown>>;

/**
 * Starts one `modal-sandbox-fs-tools '<json>'` exec, implemented on the host against the sandbox's root with
 * the same JSON protocol (stdout: bytes or JSON; failure: exit 1 and `{error_kind, message, detail}` on stderr).
 */
export function startFsToolExec(execId: string, argv: readonly string[], ctx: FsToolContext): ExecRecord {
  const stdinChunks: Buffer[] = [];
  let stdinDone: () => void = () => {};
  const stdinClosed = new Promise<void>((resolve) => {
    stdinDone = resolve;
  });
  let watcher: FSWatcher | undefined;
  let stopWatch: () => void = () => {};
  const exec = new ExecRecord(
    execId,
    {
      write: (data) => stdinChunks.push(data),
      end: () => stdinDone(),
    },
    () => {
      stopWatch();
      exec.finish({ signal: 9 });
    },
  );

  const run = async (): Promise<void> => {
    let command: Command;
    try {
      command = JSON.parse(argv[1] ?? "") as Command;
    } catch {
      fail("NotSupported", "the fs-tools argument is not JSON");
    }
    const [op, args = {}] = Object.entries(command)[0] ?? [];
    switch (op) {
      case "ReadFile": {
        const r = resolvePath(ctx, args["path"]);
        const st = await io(stat(r.hostPath));
        if (st.isDirectory()) fail("IsDirectory", r.sandboxPath);
        exec.stdout.write(await io(readFile(r.hostPath)));
        return;
      }
      case "WriteFile": {
        const r = resolvePath(ctx, args["path"]);
        await stdinClosed;
        writable(r);
        await makeParents(ctx, posix.dirname(r.sandboxPath));
        const existing = await stat(r.hostPath).catch(() => undefined);
        if (existing?.isDirectory()) fail("IsDirectory", r.sandboxPath);
        await io(writeFile(r.hostPath, Buffer.concat(stdinChunks)));
        return;
      }
      case "ListFiles": {
        const r = resolvePath(ctx, args["path"]);
        const st = await io(stat(r.hostPath));
        if (!st.isDirectory()) fail("NotDirectory", r.sandboxPath);
        const out: Record<string, unknown>[] = [];
        for (const name of (await readdir(r.hostPath)).sort()) {
          const host = `${r.hostPath}/${name}`;
          const est = await lstat(host).catch(() => undefined);
          if (est) out.push(await entry(name, posix.join(r.sandboxPath, name), host, est));
        }
        exec.stdout.write(Buffer.from(JSON.stringify(out)));
        return;
      }
      case "Stat": {
        const r = resolvePath(ctx, args["path"]);
        const st = await io(lstat(r.hostPath));
        const name = r.sandboxPath === "/" ? "/" : posix.basename(r.sandboxPath);
        exec.stdout.write(Buffer.from(JSON.stringify(await entry(name, r.sandboxPath, r.hostPath, st))));
        return;
      }
      case "MakeDirectory": {
        const r = resolvePath(ctx, args["path"]);
        const existing = await stat(r.hostPath).catch(() => undefined);
        if (args["parents"] === true) {
          if (existing && !existing.isDirectory()) fail("PathAlreadyExists", r.sandboxPath);
          await makeParents(ctx, r.sandboxPath);
          return;
        }
        if (existing) fail("PathAlreadyExists", r.sandboxPath);
        writable(r);
        await io(mkdir(r.hostPath));
        return;
      }
      case "Remove": {
        const r = resolvePath(ctx, args["path"]);
        const st = await io(lstat(r.hostPath));
        writable(r);
        if (st.isDirectory()) {
          if (args["recursive"] === true) await rm(r.hostPath, { recursive: true, force: true });
          else await io(rmdir(r.hostPath));
        } else {
          await io(unlink(r.hostPath));
        }
        return;
      }
      case "Watch": {
        const r = resolvePath(ctx, args["path"]);
        await io(stat(r.hostPath));
        const filter = Array.isArray(args["filter"]) ? new Set(args["filter"].map(String)) : undefined;
        const timeoutSecs = typeof args["timeout_secs"] === "number" ? args["timeout_secs"] : undefined;
        await new Promise<void>((resolve) => {
          let timer: NodeJS.Timeout | undefined;
          stopWatch = () => {
            watcher?.close();
            if (timer) clearTimeout(timer);
            resolve();
          };
          watcher = watch(r.hostPath, { recursive: args["recursive"] === true }, (kind, file) => {
            const rel = file ? String(file) : "";
            const sandboxPath = rel ? posix.join(r.sandboxPath, rel) : r.sandboxPath;
            const hostPath = rel ? `${r.hostPath}/${rel}` : r.hostPath;
            void stat(hostPath)
              .then(
                () => (kind === "rename" ? "Create" : "Modify"),
                () => "Remove",
              )
              .then((eventType) => {
                if (filter && !filter.has(eventType)) return;
                exec.stdout.write(
                  Buffer.from(`${JSON.stringify({ event_type: eventType, paths: [sandboxPath] })}\n`),
                );
              });
          });
          watcher.on("error", () => stopWatch());
          if (timeoutSecs !== undefined && timeoutSecs > 0) timer = setTimeout(stopWatch, timeoutSecs * 1000);
          void stdinClosed.then(stopWatch);
        });
        return;
      }
      default:
        fail("NotSupported", `unknown fs-tools command ${String(op)}`);
    }
  };

  void run().then(
    () => exec.finish({ code: 0 }),
    (err: unknown) => {
      const e = fromErrno(err);
      exec.stderr.write(
        Buffer.from(JSON.stringify({ error_kind: e.kind, message: e.message, detail: e.detail })),
      );
      exec.finish({ code: 1 });
    },
  );
  return exec;
}

/** True when an exec's argv targets the fs tool. */
export function isFsToolCommand(argv: readonly string[]): boolean {
  return argv[0] === FS_TOOLS_PATH;
}
