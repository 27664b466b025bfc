import { describe, expect, it } from "vitest";
import { TerminalScreen } from "./screen.js";

const size = { cols: 80, rows: 10 };

function screen(): { s: TerminalScreen; answers: string[] } {
  const answers: string[] = [];
  return { s: new TerminalScreen(size, (d) => answers.push(d)), answers };
}

const crlf = (text: string) => Buffer.from(text.replace(/\n/g, "\r\n"));

describe("TerminalScreen", () => {
  it("renders lines, collapses \\r progress bars, strips colours and applies erase", async () => {
    const { s } = screen();
    s.write(crlf("plain\n\x1b[31mred\x1b[0m and \x1b[1mbold\x1b[0m   \n10%\r50%\r100%\ngone\x1b[2K\rkept\n"));
    expect((await s.take()).text.trimEnd()).toBe("plain\nred and bold\n100%\nkept");
  });

  it("a second take returns only what is new; a line returned before gives only its new part", async () => {
    const { s } = screen();
    s.write(crlf("one\nname? "));
    const first = await s.take();
    expect(first).toEqual({ text: "one\nname?", continued: false });
    s.write(crlf("world\nhello world\n"));
    const second = await s.take();
    expect(second.continued).toBe(true);
    expect(second.text.trimEnd()).toBe(" world\nhello world");
    s.write(crlf("50%"));
    await s.take();
    s.write(Buffer.from("\r100%\r\ndone\r\n"));
    expect((await s.take()).text.trimEnd()).toBe("100%\ndone");
  });

  it("keeps every line of long output (scrolled-off rows are collected), blank lines included", async () => {
    const { s } = screen();
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++) lines.push(i % 7 === 0 ? "" : `line ${i} \x1b[32mgreen\x1b[0m`);
    // Small writes with colours: the emulator path only.
    for (const line of lines) s.write(crlf(`${line}\n`));
    const text = (await s.take()).text.trimEnd();
    expect(text).toBe(
      lines
        .map((l) => l.replaceAll("\x1b[32m", "").replaceAll("\x1b[0m", ""))
        .join("\n")
        .trimEnd(),
    );
  });

  it("the fast path for plain lines gives the same text as the emulator", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 20_000; i++) lines.push(i % 11 === 0 ? "" : `row ${i}${i % 5 === 0 ? "   " : ""}`);
    const all = `partial ${lines.join("\n")}\nlast partial`;
    const { s } = screen();
    s.write(crlf("partial "));
    s.write(crlf(`${lines.join("\n")}\nlast partial`));
    expect((await s.take()).text).toBe(
      all
        .split("\n")
        .map((l) => l.trimEnd())
        .join("\n"),
    );
    // and the screen still shows the last rows as a terminal would
    s.write(crlf("\nafter\n"));
    expect((await s.take()).text.trimEnd()).toBe("\nafter");
  });

  it("keeps a line of megabytes (written in pieces, multi-byte characters cut anywhere) as one line", async () => {
    const { s } = screen();
    const unit = "xé€🎉 ";
    const line = Buffer.from(unit.repeat(40_000));
    s.write(crlf("start "));
    for (let off = 0; off < line.length; off += 7777) s.write(line.subarray(off, off + 7777));
    s.write(crlf("\nnext line\n"));
    const text = (await s.take()).text.trimEnd();
    expect(text).toBe(`start ${unit.repeat(40_000).trimEnd()}\nnext line`);
  });

  it("keeps every line exactly once when plain output arrives in small chunks (scrollback full, rows reused)", async () => {
    const { s } = screen();
    let all = "";
    for (let i = 0; i < 40_000; i++) all += `${i}\r\n`;
    const bytes = Buffer.from(all);
    for (let off = 0; off < bytes.length; off += 997) {
      s.write(bytes.subarray(off, off + 997));
      if (off % (997 * 20) === 0) await new Promise((r) => setTimeout(r, 0));
    }
    expect((await s.take()).text.trimEnd()).toBe(all.replace(/\r\n/g, "\n").trimEnd());
  });

  it("a take after the screen was cleared returns the new rows, not only rows below the last one returned", async () => {
    const { s } = screen();
    s.write(crlf("old 1\nold 2\nold 3\n"));
    expect((await s.take()).text.trimEnd()).toBe("old 1\nold 2\nold 3");
    s.write(Buffer.from("\x1b[H\x1b[2J\x1b[3Jnew top\r\n"));
    expect((await s.take()).text.trim()).toBe("new top");
  });

  it("a progress bar redrawn with \\r and erase-line gives its last state, once", async () => {
    const { s } = screen();
    s.write(Buffer.from("Downloading\r\n"));
    for (let p = 0; p <= 100; p += 10)
      s.write(Buffer.from(`\r\x1b[K[${"#".repeat(p / 10).padEnd(10)}] ${p}%`));
    s.write(Buffer.from("\r\ndone\r\n"));
    expect((await s.take()).text.trimEnd()).toBe("Downloading\n[##########] 100%\ndone");
  });

  it("joins a line longer than the window (wrapped rows) into one line", async () => {
    const { s } = screen();
    const long = "x".repeat(1000);
    s.write(crlf(`${long}\nnext\n`));
    expect((await s.take()).text.trimEnd()).toBe(`${long}\nnext`);
  });

  it("shows a full-screen program's screen, then the normal screen after it leaves", async () => {
    const { s } = screen();
    s.write(crlf("before\n"));
    await s.take();
    s.write(Buffer.from("\x1b[?1049h\x1b[H\x1b[2JFILE LINE 1\r\nFILE LINE 2\x1b[10;1H:"));
    expect((await s.take()).text).toBe("FILE LINE 1\nFILE LINE 2\n\n\n\n\n\n\n\n:");
    s.write(Buffer.from("\x1b[?1049lafter\r\n"));
    // The cursor comes back where it was (the empty row after "before"), the row the last take ended on.
    expect((await s.take()).text.trimEnd()).toBe("after");
  });

  it("streams new lines and the new part of the last line, \\r + the line when it was rewritten", async () => {
    const { s } = screen();
    const seen: string[] = [];
    s.onText((t) => seen.push(t));
    s.write(crlf("a\n"));
    await s.idle();
    s.write(crlf("b\npro"));
    await s.idle();
    s.write(crlf("gress"));
    await s.idle();
    s.write(Buffer.from("\rdone    \r\n"));
    await s.idle();
    expect(seen.join("")).toBe("a\nb\nprogress\rdone\n");
  });

  it("answers the program's cursor position query like a terminal", async () => {
    const { s, answers } = screen();
    s.write(Buffer.from("ab\x1b[6n"));
    await s.idle();
    expect(answers).toEqual(["\x1b[1;3R"]);
  });

  it("clear starts the next command on an empty screen", async () => {
    const { s } = screen();
    s.write(crlf("old output\n"));
    s.clear();
    s.write(crlf("new\n"));
    expect(await s.take()).toEqual({ text: "new\n", continued: false });
  });
});

describe("TerminalScreen.dispose", () => {
  it("resolves takes still queued (a shell closed while an observation waits never hangs)", async () => {
    const { s } = screen();
    s.write(crlf("rendered\n"));
    await s.idle();
    s.write(crlf("x".repeat(100_000)));
    const pending = s.take();
    s.dispose();
    expect((await pending).text).toContain("rendered");
    expect(await s.take()).toEqual({ text: "", continued: false });
    await s.idle();
  });
});
