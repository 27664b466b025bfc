import type { Stats } from "node:fs";
import { mkdir, readdir, stat } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { EDITOR_CLIPPED_NOTICE, MAX_EDITOR_RESPONSE_CHARS } from "@agent-runtime/runtime-core";
import { unifiedDiff } from "../util/unified-diff.js";
import { isBinaryBuffer } from "./file-utils.js";
import { openRegularFile, readAtMost, replaceContent } from "./safe-fs.js";

/** Lines of context around an edit in the returned snippet (openhands-aci). */
const SNIPPET_CONTEXT_WINDOW = 4;
/** Previous versions kept per file for `undo_edit` (openhands-aci keeps 5). */
const MAX_HISTORY_PER_FILE = 5;
/** Files larger than this are refused (openhands-aci's 10 MB limit). */
const MAX_FILE_BYTES = 10 * 1024 * 1024;

/**
 * An editor failure; the server answers `ERROR:\n<message>` inside an edit (or read) observation. Refusals of
 * the file itself (a FIFO, a device, a NUL byte in the path) are `FileAccessError`s and become ErrorObservations.
 */
export class EditorError extends Error {
  override readonly name = "EditorError";
}

/** What one editor command did. */
export interface EditorResult {
  output: string;
  /** Whether the file existed before the command. */
  prevExist: boolean;
  /** Unified diff of the whole file, `""` when unchanged (e.g. `view`), as OpenHands reports it. */
  diff: string;
}

/** Arguments of one str_replace_editor command. */
export interface EditorCommand {
  command: "view" | "create" | "str_replace" | "insert" | "undo_edit";
  path: string;
  fileText?: string | null;
  oldStr?: string | null;
  newStr?: string | null;
  insertLine?: number | null;
  viewRange?: number[] | null;
}

/**
 * The `str_replace_editor` of openhands-aci (`OHEditor`, 0.3.x) re-implemented: `view` (files as `cat -n`, directories
 * two levels deep), `create`, `str_replace` (exactly one match), `insert`, `undo_edit`, with its messages,
 * 16,000-character clipping and 4-line snippets. History lives in memory, per server.
 */
export class FileEditor {
  readonly #history = new Map<string, string[]>();
  readonly #workingDir: string;
  readonly #onCreate: (path: string) => void;

  /** `onCreate` runs after a file is created (to give it to the sandbox user). */
  constructor(workingDir: string, onCreate: (path: string) => void = () => {}) {
    this.#workingDir = workingDir;
    this.#onCreate = onCreate;
  }

  /**
   * Runs one command. Every file is opened without blocking and only when regular (see `openRegularFile`);
   * nothing here does synchronous I/O on the agent's paths.
   */
  async run(cmd: EditorCommand): Promise<EditorResult> {
    const path = cmd.path;
    const existing = await this.#validatePath(cmd.command, path);
    const prevExist = existing !== undefined;
    switch (cmd.command) {
      case "view":
        return { output: await this.#view(path, existing!, cmd.viewRange ?? null), prevExist, diff: "" };
      case "create": {
        if (cmd.fileText === null || cmd.fileText === undefined) throw missing("file_text", "create");
        await mkdir(dirname(path), { recursive: true });
        const { handle } = await openRegularFile(path, "create");
        try {
          await replaceContent(handle, cmd.fileText);
        } finally {
          await handle.close();
        }
        this.#onCreate(path);
        return {
          output: `File created successfully at: ${path}`,
          prevExist,
          diff: editDiff("", cmd.fileText, path),
        };
      }
      case "str_replace": {
        if (cmd.oldStr === null || cmd.oldStr === undefined) throw missing("old_str", "str_replace");
        return this.#strReplace(path, cmd.oldStr, cmd.newStr ?? "", prevExist);
      }
      case "insert": {
        if (cmd.insertLine === null || cmd.insertLine === undefined) throw missing("insert_line", "insert");
        if (cmd.newStr === null || cmd.newStr === undefined) throw missing("new_str", "insert");
        return this.#insert(path, cmd.insertLine, cmd.newStr, prevExist);
      }
      case "undo_edit": {
        const stack = this.#history.get(path);
        const previous = stack?.pop();
        if (previous === undefined) throw new EditorError(`No edit history found for ${path}.`);
        const current = await readText(path);
        await writeText(path, previous);
        return {
          output: `Last edit to ${path} undone successfully. ${makeOutput(previous, path)}`,
          prevExist,
          diff: editDiff(current, previous, path),
        };
      }
    }
  }

  /** Checks the path for the command; returns its stat when it exists. */
  async #validatePath(command: EditorCommand["command"], path: string): Promise<Stats | undefined> {
    if (!isAbsolute(path)) {
      const suggested = join(this.#workingDir, path);
      throw invalid(
        "path",
        path,
        `The path should be an absolute path, starting with \`/\`. Maybe you meant ${suggested}?`,
      );
    }
    const st = await stat(path).catch(() => undefined);
    const exists = st !== undefined;
    if (command === "create" && exists) {
      throw invalid(
        "path",
        path,
        `File already exists at: ${path}. Cannot overwrite files using command \`create\`.`,
      );
    }
    if (command !== "create" && !exists) {
      throw invalid("path", path, `The path ${path} does not exist. Please provide a valid path.`);
    }
    if (command !== "view" && st?.isDirectory()) {
      throw invalid(
        "path",
        path,
        `The path ${path} is a directory and only the \`view\` command can be used on directories.`,
      );
    }
    return st;
  }

  async #view(path: string, st: Stats, viewRange: number[] | null): Promise<string> {
    if (st.isDirectory()) {
      if (viewRange) {
        throw invalid(
          "view_range",
          JSON.stringify(viewRange),
          "The `view_range` parameter is not allowed when `path` points to a directory.",
        );
      }
      return viewDirectory(path);
    }
    const text = await readText(path);
    if (!viewRange || viewRange.length === 0) return makeOutput(text, path, 1);
    if (viewRange.length !== 2)
      throw invalid("view_range", JSON.stringify(viewRange), "It should be a list of two integers.");
    const [start, end] = viewRange as [number, number];
    const lines = splitKeepEnds(text);
    const numLines = lines.length;
    if (start < 1 || start > numLines) {
      throw invalid(
        "view_range",
        JSON.stringify(viewRange),
        `Its first element \`${start}\` should be within the range of lines of the file: [1, ${numLines}].`,
      );
    }
    if (end > numLines) {
      throw invalid(
        "view_range",
        JSON.stringify(viewRange),
        `Its second element \`${end}\` should be smaller than the number of lines in the file: \`${numLines}\`.`,
      );
    }
    if (end !== -1 && end < start) {
      throw invalid(
        "view_range",
        JSON.stringify(viewRange),
        `Its second element \`${end}\` should be greater than or equal to the first element \`${start}\`.`,
      );
    }
    const last = end === -1 ? numLines : end;
    // The range's final newline ends its last line; it does not start another (numbered, empty) one.
    const chunk = lines.slice(start - 1, last).join("");
    return makeOutput(chunk.endsWith("\n") ? chunk.slice(0, -1) : chunk, path, start);
  }

  async #strReplace(path: string, oldStr: string, newStr: string, prevExist: boolean): Promise<EditorResult> {
    const content = await readText(path);
    const positions: number[] = [];
    for (
      let at = content.indexOf(oldStr);
      at >= 0 && oldStr !== "";
      at = content.indexOf(oldStr, at + oldStr.length)
    ) {
      positions.push(at);
    }
    if (positions.length === 0) {
      throw new EditorError(
        `No replacement was performed, old_str \`${oldStr}\` did not appear verbatim in ${path}.`,
      );
    }
    if (positions.length > 1) {
      const lines = [...new Set(positions.map((p) => lineOf(content, p)))].sort((x, y) => x - y);
      throw new EditorError(
        `No replacement was performed. Multiple occurrences of old_str \`${oldStr}\` in lines [${lines.join(", ")}]. Please ensure it is unique.`,
      );
    }
    if (newStr === oldStr) {
      throw new EditorError("No replacement was performed. `new_str` and `old_str` must be different.");
    }
    const at = positions[0]!;
    const updated = content.slice(0, at) + newStr + content.slice(at + oldStr.length);
    await writeText(path, updated);
    this.#remember(path, content);
    const line = lineOf(content, at) - 1;
    const startLine = Math.max(0, line - SNIPPET_CONTEXT_WINDOW);
    const endLine = line + SNIPPET_CONTEXT_WINDOW + countNewlines(newStr);
    const snippet = updated
      .split("\n")
      .slice(startLine, endLine + 1)
      .join("\n");
    const output =
      `The file ${path} has been edited. ` +
      makeOutput(snippet, `a snippet of ${path}`, startLine + 1) +
      "Review the changes and make sure they are as expected. Edit the file again if necessary.";
    return { output, prevExist, diff: editDiff(content, updated, path) };
  }

  async #insert(path: string, insertLine: number, newStr: string, prevExist: boolean): Promise<EditorResult> {
    const content = await readText(path);
    const lines = content.split("\n");
    // A final newline does not start another line.
    const numLines = content.endsWith("\n") ? lines.length - 1 : lines.length;
    if (insertLine < 0 || insertLine > numLines) {
      throw invalid(
        "insert_line",
        String(insertLine),
        `It should be within the range of allowed values: [0, ${numLines}]`,
      );
    }
    const newLines = newStr.split("\n");
    const updatedLines = [...lines.slice(0, insertLine), ...newLines, ...lines.slice(insertLine)];
    const updated = updatedLines.join("\n");
    await writeText(path, updated);
    this.#remember(path, content);
    const snippetLines = [
      ...lines.slice(Math.max(0, insertLine - SNIPPET_CONTEXT_WINDOW), insertLine),
      ...newLines,
      ...lines.slice(insertLine, insertLine + SNIPPET_CONTEXT_WINDOW),
    ];
    const output =
      `The file ${path} has been edited. ` +
      makeOutput(
        snippetLines.join("\n"),
        "a snippet of the edited file",
        Math.max(1, insertLine - SNIPPET_CONTEXT_WINDOW + 1),
      ) +
      "Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary.";
    return { output, prevExist, diff: editDiff(content, updated, path) };
  }

  #remember(path: string, content: string): void {
    const stack = this.#history.get(path) ?? [];
    stack.push(content);
    if (stack.length > MAX_HISTORY_PER_FILE) stack.shift();
    this.#history.set(path, stack);
  }
}

/**
 * The diff OpenHands' server reports for an editor command (openhands-aci's `get_diff`): Python's
 * `difflib.unified_diff` of the texts split on `\n`, `n=0` (no context lines: a 2-line file created is
 * `@@ -0,0 +1,2 @@`), every line right-stripped.
 */
export function editDiff(oldText: string, newText: string, path: string): string {
  return unifiedDiff(oldText, newText, path, 0)
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n");
}

function invalid(parameter: string, value: string, hint: string): EditorError {
  return new EditorError(`Invalid \`${parameter}\` parameter: ${value}. ${hint}`);
}

function missing(parameter: string, command: string): EditorError {
  return new EditorError(`Parameter \`${parameter}\` is required for command: ${command}.`);
}

/**
 * Reads a text file for the editor: refuses binary, oversized and non-UTF-8 files with clear messages. Sizes
 * are counted while reading (at most {@link MAX_FILE_BYTES} + 1 bytes are read).
 */
async function readText(path: string): Promise<string> {
  const { handle, stat: st } = await openRegularFile(path, "read");
  let buf: Buffer;
  try {
    const tooLarge = (size: string) =>
      new EditorError(
        `File too large: ${path} is ${size}; the editor handles files up to ${MAX_FILE_BYTES} bytes. Use shell commands (grep, sed, head) instead.`,
      );
    if (st.size > MAX_FILE_BYTES) throw tooLarge(`${st.size} bytes`);
    const read = await readAtMost(handle, MAX_FILE_BYTES, { headBytes: 8192, stop: isBinaryBuffer });
    if (read.overLimit) throw tooLarge(`more than ${MAX_FILE_BYTES} bytes`);
    buf = read.data;
  } finally {
    await handle.close();
  }
  if (isBinaryBuffer(buf)) {
    throw new EditorError(`The file ${path} appears to be binary; the editor only works on text files.`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw new EditorError(`The file ${path} could not be decoded as utf-8.`);
  }
}

/** `cat -n` style output: tabs expanded, 6-wide line numbers, clipped at 16,000 characters. */
export function makeOutput(content: string, description: string, startLine = 1): string {
  let text =
    content.length > MAX_EDITOR_RESPONSE_CHARS
      ? content.slice(0, MAX_EDITOR_RESPONSE_CHARS) + EDITOR_CLIPPED_NOTICE
      : content;
  text = text
    .split("\n")
    .map((line, i) => `${String(i + startLine).padStart(6)}\t${expandTabs(line)}`)
    .join("\n");
  return `Here's the result of running \`cat -n\` on ${description}:\n${text}\n`;
}

/** Replaces the content of an existing regular file in place (mode and owner stay). */
async function writeText(path: string, text: string): Promise<void> {
  const { handle } = await openRegularFile(path, "write");
  try {
    await replaceContent(handle, text);
  } finally {
    await handle.close();
  }
}

async function viewDirectory(root: string): Promise<string> {
  const base = root.replace(/\/+$/, "") || "/";
  const paths: string[] = [];
  let hidden = 0;
  const walk = async (dir: string, depth: number): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(".")) {
        if (depth === 1) hidden++;
        continue;
      }
      const full = join(dir, name);
      let isDir = false;
      try {
        isDir = (await stat(full)).isDirectory();
      } catch {
        // dangling link: listed as a file
      }
      paths.push(isDir ? `${full}/` : full);
      if (isDir && depth < 2) await walk(full, depth + 1);
    }
  };
  await walk(base, 1);
  paths.sort((x, y) => (x.replace(/\/$/, "") < y.replace(/\/$/, "") ? -1 : 1));
  let out = `Here's the files and directories up to 2 levels deep in ${base}, excluding hidden items:\n${[`${base}/`, ...paths].join("\n")}`;
  if (hidden > 0) {
    out += `\n\n${hidden} hidden files/directories in this directory are excluded. You can use 'ls -la ${base}' to see them.`;
  }
  if (out.length > MAX_EDITOR_RESPONSE_CHARS)
    out = out.slice(0, MAX_EDITOR_RESPONSE_CHARS) + EDITOR_CLIPPED_NOTICE;
  return out;
}

function splitKeepEnds(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  return lines.length === 1 && lines[0] === "" ? [] : lines;
}

function lineOf(text: string, index: number): number {
  return countNewlines(text.slice(0, index)) + 1;
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

/** Python's `str.expandtabs(8)`. */
function expandTabs(line: string): string {
  if (!line.includes("\t")) return line;
  let out = "";
  for (const ch of line) {
    if (ch === "\t") out += " ".repeat(8 - (out.length % 8));
    else out += ch;
  }
  return out;
}
