import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

/** A temporary directory removed by `cleanup()`. */
export function tempDir(prefix = "image-builder-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A function that makes a temporary directory, each removed after the test that made it. */
export function tempDirs(prefix?: string): () => string {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  return () => {
    const { dir, cleanup } = tempDir(prefix);
    cleanups.push(cleanup);
    return dir;
  };
}

/**
 * A directory of programs for a shell whose PATH holds nothing else: recorders (small Node scripts that
 * append their name and argv as one JSON line to a log, and exit 0), shell scripts, and real tools linked
 * in by name. Nothing outside the directory can run by accident (no real apt-get, rm or npm).
 */
export class FakeBin {
  readonly dir: string;
  readonly log: string;

  constructor(root: string) {
    this.dir = join(root, "bin");
    this.log = join(root, "calls.jsonl");
    spawnSync("mkdir", ["-p", this.dir]);
  }

  /** Adds a program that records its calls. */
  recorder(...names: string[]): this {
    for (const name of names) {
      this.script(
        name,
        `#!${process.execPath}\nrequire("node:fs").appendFileSync(${JSON.stringify(this.log)}, JSON.stringify([${JSON.stringify(name)}, ...process.argv.slice(2)]) + "\\n");\n`,
      );
    }
    return this;
  }

  /** Adds a program with the given text (make it start with a #! line). */
  script(name: string, text: string): this {
    const path = join(this.dir, name);
    writeFileSync(path, text);
    chmodSync(path, 0o755);
    return this;
  }

  /** Links real tools (found in /usr/bin or /bin) into the directory. */
  real(...names: string[]): this {
    for (const name of names) {
      const target = [`/usr/bin/${name}`, `/bin/${name}`].find((p) => existsSync(p));
      if (!target) throw new Error(`no ${name} on this machine`);
      symlinkSync(target, join(this.dir, name));
    }
    return this;
  }

  /** Every recorded call as `[name, ...args]`. */
  calls(): string[][] {
    if (!existsSync(this.log)) return [];
    return readFileSync(this.log, "utf8")
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as string[]);
  }
}

/** Runs `command` with `shell -c` (as Docker runs a RUN line) with PATH = only `bin`. */
export function runShell(
  command: string,
  bin: FakeBin,
  options: { shell?: string; cwd?: string; env?: Record<string, string> } = {},
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(options.shell ?? "/bin/sh", ["-c", command], {
    cwd: options.cwd,
    env: { PATH: bin.dir, HOME: options.cwd ?? bin.dir, SHLVL: "1", ...options.env },
    encoding: "utf8",
    timeout: 15_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The `RUN` lines of a Dockerfile, without the `RUN `. */
export function runLines(dockerfile: string): string[] {
  return dockerfile
    .split("\n")
    .filter((line) => line.startsWith("RUN "))
    .map((line) => line.slice(4));
}
