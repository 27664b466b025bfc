/**
 * Helpers of the renderer's fast path: output that is plain text (no control characters but line feeds) only
 * moves the cursor to the next row, so it can be appended as text instead of going through the emulator.
 */

/**
 * Length of the plain start of `data`: no control characters but LF and CR LF, no C1 controls (a CR at the very
 * end is not plain: its LF has not arrived yet).
 */
export function plainLength(data: Buffer): number {
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b >= 0x20 && b !== 0x7f) {
      if (b === 0xc2 && (data[i + 1] ?? 0) >= 0x80 && (data[i + 1] ?? 0) <= 0x9f) return i;
      continue;
    }
    if (b === 0x0a || (b === 0x0d && data[i + 1] === 0x0a)) continue;
    return i;
  }
  return data.length;
}

/**
 * Where the last `rows` rows of `data`'s plain start begin (-1 when it holds fewer): the fast path leaves them
 * to the emulator so the screen shows what a terminal would. Rows are counted as if a byte were a column,
 * which over-counts multi-byte characters, so the screenful is never short. Never cuts a UTF-8 character,
 * never separates a CR from its LF.
 */
export function lastRowsStart(data: Buffer, cols: number, rows: number): number {
  let pos = plainLength(data);
  let need = rows;
  while (need > 0) {
    if (pos <= 0) return -1;
    const lf = data.lastIndexOf(0x0a, pos - 1);
    const start = lf + 1;
    const segmentRows = Math.max(1, Math.ceil((pos - start) / cols));
    if (segmentRows >= need && pos - start > (need - 1) * cols) {
      // A long line: the screenful starts inside it.
      if (lf < 0 && pos - need * cols <= 0) return -1;
      pos = Math.max(start, pos - need * cols);
      while (pos > start && (data[pos]! & 0xc0) === 0x80) pos--;
      need = 0;
    } else {
      need -= segmentRows;
      // The screenful starts with this line: the text before it ends with its line feed.
      pos = need <= 0 ? start : lf;
    }
  }
  while (pos > 0 && data[pos - 1] === 0x0d) pos--;
  return pos;
}

/**
 * Plain text appended to a row that already holds `head`: lines joined by `\n` (CR LF becomes LF), each
 * finished line right-trimmed as a rendered row is; `open` when the text ends inside a line (left untrimmed:
 * it goes on).
 */
export function plainLines(head: string, text: string): { text: string; open: boolean } {
  let out = head + text;
  if (out.includes("\r")) out = out.replace(/\r\n/g, "\n");
  const open = !out.endsWith("\n");
  if (!open) out = out.slice(0, -1).replace(/[^\S\n]+$/, "");
  return { text: out.replace(/[^\S\n]+(?=\n)/g, ""), open };
}
