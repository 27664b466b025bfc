import { readFileSync } from "node:fs";

const RUNNING = /^\[(\d+)\][+-]?\s+Running\s/;

/**
 * What an interactive shell's terminal would show about jobs after a command, read from the files the marker
 * function wrote (`jobs -n` into `jobsFile`; `jobs -l` into `jobsFile.l` when `$!` changed):
 * `[1] 4242` for each job this command put in the background (`newBackgroundPid` is the new `$!`, -1 when it
 * did not change), then stopped and finished jobs (`[1]+  Stopped  sleep 20`, `[1]+  Done  sleep 1`).
 * An interactive shell prints `[1] 4242` when the job starts; here it comes after the command's own output.
 * Returns "" when there is nothing to show, else lines ending in a newline.
 */
export function readJobNotices(jobsFile: string, newBackgroundPid: number): string {
  const changed = readLines(jobsFile);
  if (changed.length === 0) return "";
  const pids = new Map<string, string>();
  if (newBackgroundPid > 0) {
    for (const line of readLines(`${jobsFile}.l`)) {
      const m = /^\[(\d+)\][+-]?\s+(\d+)\s/.exec(line);
      if (m) pids.set(m[1]!, m[2]!);
    }
  }
  const out: string[] = [];
  for (const line of changed) {
    const running = RUNNING.exec(line);
    if (!running) out.push(line);
    else if (newBackgroundPid > 0) {
      const pid = pids.get(running[1]!);
      if (pid) out.push(`[${running[1]}] ${pid}`);
    }
  }
  return out.length > 0 ? `${out.join("\n")}\n` : "";
}

function readLines(path: string): string[] {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l);
  } catch {
    return [];
  }
}
