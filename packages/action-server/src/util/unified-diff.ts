/** Above this many cells (old x new lines of the changed middle) the diff replaces the middle wholesale. */
const MAX_DIFF_CELLS = 25_000_000;

type Op = { kind: "equal" | "delete" | "insert"; a: number; b: number };

/**
 * A unified diff of two texts split on `\n`, formatted like Python's
 * `"\n".join(difflib.unified_diff(old.split("\n"), new.split("\n"), path, path, lineterm=""))`:
 * `--- path`, `+++ path`, hunks with 3 lines of context, no trailing newline, "" when equal.
 */
export function unifiedDiff(oldText: string, newText: string, path: string, context = 3): string {
  const a = oldText.split("\n");
  const b = newText.split("\n");
  const codes = toOpcodes(diffLines(a, b));
  if (codes.every((c) => c.tag === "equal")) return "";
  const out = [`--- ${path}`, `+++ ${path}`];
  for (const group of groupOpcodes(codes, context)) {
    const first = group[0]!;
    const last = group[group.length - 1]!;
    out.push(`@@ -${range(first.i1, last.i2)} +${range(first.j1, last.j2)} @@`);
    for (const c of group) {
      if (c.tag === "equal") {
        for (let i = c.i1; i < c.i2; i++) out.push(` ${a[i]}`);
        continue;
      }
      for (let i = c.i1; i < c.i2; i++) out.push(`-${a[i]}`);
      for (let j = c.j1; j < c.j2; j++) out.push(`+${b[j]}`);
    }
  }
  return out.join("\n");
}

interface Opcode {
  tag: "equal" | "change";
  i1: number;
  i2: number;
  j1: number;
  j2: number;
}

function range(start: number, stop: number): string {
  const length = stop - start;
  if (length === 1) return String(start + 1);
  if (length === 0) return `${start},0`;
  return `${start + 1},${length}`;
}

function toOpcodes(ops: Op[]): Opcode[] {
  const codes: Opcode[] = [];
  let i = 0;
  let j = 0;
  let k = 0;
  while (k < ops.length) {
    const equal = ops[k]!.kind === "equal";
    const i1 = i;
    const j1 = j;
    while (k < ops.length && (ops[k]!.kind === "equal") === equal) {
      const op = ops[k]!;
      if (op.kind !== "insert") i++;
      if (op.kind !== "delete") j++;
      k++;
    }
    codes.push({ tag: equal ? "equal" : "change", i1, i2: i, j1, j2: j });
  }
  return codes;
}

/** difflib's `get_grouped_opcodes`: changes with `n` lines of context, split where 2n equal lines separate them. */
function groupOpcodes(input: Opcode[], n: number): Opcode[][] {
  const codes = input.map((c) => ({ ...c }));
  const head = codes[0];
  if (head?.tag === "equal") {
    head.i1 = Math.max(head.i1, head.i2 - n);
    head.j1 = Math.max(head.j1, head.j2 - n);
  }
  const tail = codes[codes.length - 1];
  if (tail?.tag === "equal") {
    tail.i2 = Math.min(tail.i2, tail.i1 + n);
    tail.j2 = Math.min(tail.j2, tail.j1 + n);
  }
  const groups: Opcode[][] = [];
  let group: Opcode[] = [];
  for (const c of codes) {
    let { i1, j1 } = c;
    if (c.tag === "equal" && c.i2 - c.i1 > 2 * n) {
      group.push({ tag: "equal", i1, i2: Math.min(c.i2, i1 + n), j1, j2: Math.min(c.j2, j1 + n) });
      groups.push(group);
      group = [];
      i1 = Math.max(i1, c.i2 - n);
      j1 = Math.max(j1, c.j2 - n);
    }
    group.push({ tag: c.tag, i1, i2: c.i2, j1, j2: c.j2 });
  }
  if (group.length > 0 && !(group.length === 1 && group[0]!.tag === "equal")) groups.push(group);
  return groups.filter((g) => g.some((c) => c.tag !== "equal"));
}

/** Line edit script (Myers on the middle after trimming the common prefix and suffix). */
function diffLines(a: string[], b: string[]): Op[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf])
    suf++;
  const ops: Op[] = [];
  for (let i = 0; i < pre; i++) ops.push({ kind: "equal", a: i, b: i });
  const midA = a.slice(pre, a.length - suf);
  const midB = b.slice(pre, b.length - suf);
  for (const op of middle(midA, midB)) ops.push({ kind: op.kind, a: op.a + pre, b: op.b + pre });
  for (let k = suf; k > 0; k--) ops.push({ kind: "equal", a: a.length - k, b: b.length - k });
  return ops;
}

function middle(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const wholesale = (): Op[] => [
    ...a.map((_, i) => ({ kind: "delete" as const, a: i, b: 0 })),
    ...b.map((_, j) => ({ kind: "insert" as const, a: n, b: j })),
  ];
  if (n === 0 || m === 0 || n * m > MAX_DIFF_CELLS) return wholesale();
  // Myers' O(ND) greedy algorithm keeping each round's frontier for the backtrack.
  const max = n + m;
  const offset = max;
  let v: Int32Array = new Int32Array(2 * max + 2);
  const trace: Int32Array[] = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x =
        k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!)
          ? v[offset + k + 1]!
          : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
  }
  trace.push(v);
  // Backtrack from (n, m).
  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 2; d >= 0; d--) {
    v = trace[d]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : v[offset + prevK]!;
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
      ops.push({ kind: "equal", a: x, b: y });
    }
    if (d === 0) break;
    if (x === prevX) ops.push({ kind: "insert", a: x, b: prevY });
    else ops.push({ kind: "delete", a: prevX, b: y });
    x = prevX;
    y = prevY;
  }
  ops.reverse();
  return ops;
}
