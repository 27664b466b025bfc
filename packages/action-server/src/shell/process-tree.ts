import { readdirSync, readFileSync } from "node:fs";

/** One process as seen in `/proc/<pid>/stat`. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** `R`, `S`, `T` (stopped), `Z` (zombie)... */
  state: string;
}

/** Reads `/proc/<pid>/stat`; undefined when the process is gone (or there is no /proc). */
export function readProc(pid: number): ProcInfo | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself contain spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return {
    pid,
    state: fields[0] ?? "?",
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    sid: Number(fields[3]),
  };
}

/** Every process visible in /proc (Linux). Empty where /proc is missing. */
export function listProcs(): ProcInfo[] {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return [];
  }
  const out: ProcInfo[] = [];
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const info = readProc(Number(name));
    if (info) out.push(info);
  }
  return out;
}

/** Live (non-zombie) children of `pid`. */
export function childrenOf(pid: number): ProcInfo[] {
  return listProcs().filter((p) => p.ppid === pid && p.state !== "Z");
}

/** Sends `signal` to a process group, ignoring groups that are already gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Sends `signal` to every process group of session `sid` (a shell started with `detached: true` leads its own
 * session; job control gives each job its own group inside it). Processes that left the session (setsid,
 * daemons) are not reached.
 */
export function killSession(sid: number, signal: NodeJS.Signals): void {
  const groups = new Set<number>([sid]);
  for (const p of listProcs()) if (p.sid === sid) groups.add(p.pgid);
  for (const g of groups) killGroup(g, signal);
}
