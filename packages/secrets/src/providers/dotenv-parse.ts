import { InvalidArgumentError } from "@agent-runtime/runtime-core";

const LINE_START = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*/;
const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\", $: "$" };

/**
 * Parses dotenv text: `KEY=value`, optional `export `, `#` comments (whole-line, or after whitespace in an
 * unquoted value), single quotes (literal), double quotes (with `\n \r \t \" \\ \$` escapes, may span lines,
 * which is how PEM keys are usually written). Errors name the file and line, never a value.
 */
export function parseDotenv(text: string, source: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const issues: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    const head = LINE_START.exec(line);
    if (!head) {
      issues.push(`${source}:${i + 1}: expected KEY=value (a name of letters, digits and _)`);
      continue;
    }
    const key = head[1]!;
    let rest = line.slice(head[0].length);
    const quote = rest[0];
    if (quote === "'" || quote === '"') {
      let body = rest.slice(1);
      const startLine = i;
      let close = findClose(body, quote);
      while (close < 0 && i + 1 < lines.length) {
        i++;
        body += `\n${lines[i]!}`;
        close = findClose(body, quote);
      }
      if (close < 0) {
        issues.push(`${source}:${startLine + 1}: ${key} has an unterminated ${quote} quote`);
        continue;
      }
      const after = body.slice(close + 1);
      if (!/^\s*(#.*)?$/.test(after)) {
        issues.push(`${source}:${i + 1}: ${key} has text after its closing quote`);
        continue;
      }
      body = body.slice(0, close);
      out[key] = quote === '"' ? body.replace(/\\([nrt"\\$])/g, (_m, c: string) => ESCAPES[c]!) : body;
      continue;
    }
    const comment = rest.search(/\s#/);
    if (comment >= 0) rest = rest.slice(0, comment);
    out[key] = rest.trim();
  }
  if (issues.length) {
    throw new InvalidArgumentError(`Invalid dotenv file ${source}:\n  ${issues.join("\n  ")}`, issues);
  }
  return out;
}

function findClose(body: string, quote: string): number {
  for (let j = 0; j < body.length; j++) {
    const c = body[j];
    if (c === "\\" && quote === '"') j++;
    else if (c === quote) return j;
  }
  return -1;
}
