/**
 * Splits a bash command line into its top-level commands, the way OpenHands' bashlex check does: only a
 * newline outside quotes, substitutions, heredoc bodies and compound commands (`if`, `for`, `{ }`, `( )`...)
 * separates commands; `a; b`, `a && b` and `a &` stay one command. Anything this scanner cannot follow
 * (an unterminated quote) counts as one command and bash reports the error itself.
 */
export function splitBashCommands(input: string): string[] {
  try {
    return new Splitter(input).run();
  } catch {
    return input.trim() ? [input.trim()] : [];
  }
}

class Incomplete extends Error {}

type Frame = "if" | "case" | "loop" | "brace" | "paren";

const OPENERS: Record<string, Frame> = {
  if: "if",
  case: "case",
  for: "loop",
  while: "loop",
  until: "loop",
  select: "loop",
};
const CLOSERS: Record<string, Frame> = { fi: "if", esac: "case", done: "loop" };
/** Reserved words after which a new command starts. */
const COMMAND_PREFIX_WORDS = new Set(["then", "do", "else", "elif", "!", "time", "if", "while", "until"]);
const WORD_BREAK = new Set([" ", "\t", "\n", ";", "&", "|", "(", ")", "<", ">"]);

class Splitter {
  readonly #s: string;
  #i = 0;
  readonly #stack: Frame[] = [];
  readonly #heredocs: { delim: string; stripTabs: boolean }[] = [];
  readonly #commands: string[] = [];
  #cmdStart = 0;
  /** The next word is in command position (reserved words count). */
  #commandPosition = true;
  /** The previous word was the `function` keyword: the next word is a name, then a body. */
  #functionName = false;
  /** The line cannot end here (after `&&`, `||`, `|`). */
  #continues = false;

  constructor(s: string) {
    this.#s = s;
  }

  run(): string[] {
    const s = this.#s;
    while (this.#i < s.length) {
      const c = s[this.#i]!;
      if (c === "\n") {
        this.#i++;
        this.#readHeredocBodies();
        if (this.#stack.length === 0 && !this.#continues) this.#endCommand(this.#i);
        else this.#commandPosition = true;
        continue;
      }
      if (c === " " || c === "\t") {
        this.#i++;
        continue;
      }
      if (c === "#") {
        while (this.#i < s.length && s[this.#i] !== "\n") this.#i++;
        continue;
      }
      if (c === ";") {
        // `;;`, `;&`, `;;&` end a case item; the next word is a pattern, not a command.
        const caseItem = s[this.#i + 1] === ";" || s[this.#i + 1] === "&";
        this.#i += caseItem ? (s.startsWith(";;&", this.#i) ? 3 : 2) : 1;
        this.#commandPosition = true;
        this.#continues = false;
        continue;
      }
      if (c === "&" || c === "|") {
        const two = s[this.#i + 1] === c || (c === "|" && s[this.#i + 1] === "&");
        if (c === "&" && s[this.#i + 1] === ">") {
          this.#i += 2;
          this.#readWord();
          continue;
        }
        this.#i += two ? 2 : 1;
        this.#commandPosition = true;
        this.#continues = !(c === "&" && !two);
        continue;
      }
      if (c === "(") {
        if (s[this.#i + 1] === "(") {
          this.#i += 2;
          this.#skipParens(2);
        } else {
          this.#i++;
          this.#stack.push("paren");
          this.#commandPosition = true;
        }
        this.#continues = false;
        continue;
      }
      if (c === ")") {
        this.#i++;
        if (this.#stack[this.#stack.length - 1] === "paren") this.#stack.pop();
        // After `)`: a case item's command, or the body of `f ()`.
        this.#commandPosition = true;
        this.#continues = false;
        continue;
      }
      if (c === "<" || c === ">") {
        this.#redirection();
        continue;
      }
      const start = this.#i;
      const { word, plain } = this.#readWord();
      if (this.#i === start) this.#i++;
      this.#continues = false;
      const commandPosition = this.#commandPosition;
      this.#commandPosition = false;
      if (plain && commandPosition) this.#keyword(word);
      else if (plain && this.#functionName) this.#commandPosition = true;
      else if (plain && word === "in" && this.#stack[this.#stack.length - 1] === "case")
        this.#commandPosition = true;
      this.#functionName = plain && commandPosition && word === "function";
      // `name()`: a function definition's body follows.
      if (s.startsWith("()", this.#i)) {
        this.#i += 2;
        this.#commandPosition = true;
      }
    }
    if (this.#heredocs.length > 0 || this.#stack.length > 0) throw new Incomplete();
    this.#endCommand(this.#s.length);
    return this.#commands;
  }

  #keyword(word: string): void {
    const top = this.#stack[this.#stack.length - 1];
    const opener = OPENERS[word];
    const closer = CLOSERS[word];
    if (opener) {
      this.#stack.push(opener);
      this.#commandPosition = opener === "if";
    } else if (closer) {
      if (top === closer) this.#stack.pop();
    } else if (word === "{") {
      this.#stack.push("brace");
      this.#commandPosition = true;
    } else if (word === "}") {
      if (top === "brace") this.#stack.pop();
    } else {
      this.#commandPosition = COMMAND_PREFIX_WORDS.has(word);
    }
  }

  #endCommand(end: number): void {
    const text = this.#s.slice(this.#cmdStart, end).trim();
    if (text && !/^(#[^\n]*\s*)+$/.test(text)) this.#commands.push(text);
    this.#cmdStart = end;
    this.#commandPosition = true;
    this.#continues = false;
  }

  /** `<`, `>`, `>>`, `<<`, `<<-`, `<<<`, `<&`, `>&`, `<>`... followed by a word (a heredoc's is its delimiter). */
  #redirection(): void {
    const s = this.#s;
    if (s.startsWith("<<<", this.#i)) {
      this.#i += 3;
    } else if (s.startsWith("<<", this.#i)) {
      this.#i += 2;
      const stripTabs = s[this.#i] === "-";
      if (stripTabs) this.#i++;
      while (s[this.#i] === " " || s[this.#i] === "\t") this.#i++;
      const { word } = this.#readWord();
      this.#heredocs.push({ delim: word, stripTabs });
      return;
    } else if (s[this.#i] === "<" && s[this.#i + 1] === "(") {
      this.#i += 2;
      this.#skipParens(1);
      return;
    } else if (s[this.#i] === ">" && s[this.#i + 1] === "(") {
      this.#i += 2;
      this.#skipParens(1);
      return;
    } else {
      this.#i++;
      if ("<>&|".includes(s[this.#i] ?? "")) this.#i++;
    }
    while (s[this.#i] === " " || s[this.#i] === "\t") this.#i++;
    this.#readWord();
  }

  /** Reads one word; `word` has quotes removed (for heredoc delimiters), `plain` is false if anything was quoted. */
  #readWord(): { word: string; plain: boolean } {
    const s = this.#s;
    let word = "";
    let plain = true;
    while (this.#i < s.length) {
      const c = s[this.#i]!;
      if (WORD_BREAK.has(c)) {
        // `{`/`}` are words; parentheses and operators end a word.
        break;
      }
      if (c === "\\") {
        plain = false;
        if (s[this.#i + 1] === "\n") {
          this.#i += 2;
          continue;
        }
        word += s[this.#i + 1] ?? "";
        this.#i += 2;
        continue;
      }
      if (c === "'") {
        plain = false;
        const end = s.indexOf("'", this.#i + 1);
        if (end < 0) throw new Incomplete();
        word += s.slice(this.#i + 1, end);
        this.#i = end + 1;
        continue;
      }
      if (c === '"') {
        plain = false;
        const from = this.#i + 1;
        this.#skipDouble();
        word += s.slice(from, this.#i - 1);
        continue;
      }
      if (c === "`") {
        plain = false;
        this.#skipBacktick();
        continue;
      }
      if (c === "$") {
        const n = s[this.#i + 1];
        if (n === "'") {
          plain = false;
          this.#i += 2;
          this.#skipAnsiC();
          continue;
        }
        if (n === "(") {
          plain = false;
          this.#i += 2;
          this.#skipParens(1);
          continue;
        }
        if (n === "{") {
          plain = false;
          this.#i += 2;
          this.#skipBraces();
          continue;
        }
      }
      word += c;
      this.#i++;
    }
    return { word, plain };
  }

  #skipAnsiC(): void {
    const s = this.#s;
    while (this.#i < s.length) {
      const c = s[this.#i]!;
      if (c === "\\") this.#i += 2;
      else if (c === "'") {
        this.#i++;
        return;
      } else this.#i++;
    }
    throw new Incomplete();
  }

  /** From just after an opening `"` to just after the closing one. */
  #skipDouble(): void {
    const s = this.#s;
    this.#i++;
    while (this.#i < s.length) {
      const c = s[this.#i]!;
      if (c === "\\") this.#i += 2;
      else if (c === '"') {
        this.#i++;
        return;
      } else if (c === "`") this.#skipBacktick();
      else if (c === "$" && s[this.#i + 1] === "(") {
        this.#i += 2;
        this.#skipParens(1);
      } else if (c === "$" && s[this.#i + 1] === "{") {
        this.#i += 2;
        this.#skipBraces();
      } else this.#i++;
    }
    throw new Incomplete();
  }

  #skipBacktick(): void {
    const s = this.#s;
    this.#i++;
    while (this.#i < s.length) {
      const c = s[this.#i]!;
      if (c === "\\") this.#i += 2;
      else if (c === "`") {
        this.#i++;
        return;
      } else this.#i++;
    }
    throw new Incomplete();
  }

  /** Skips until `depth` unmatched `)` closed, following quotes (command substitution, arithmetic). */
  #skipParens(depth: number): void {
    const s = this.#s;
    let atWordStart = true;
    while (this.#i < s.length) {
      const c = s[this.#i]!;
      if (c === "\\") {
        this.#i += 2;
        atWordStart = false;
      } else if (c === "'") {
        const end = s.indexOf("'", this.#i + 1);
        if (end < 0) throw new Incomplete();
        this.#i = end + 1;
      } else if (c === '"') this.#skipDouble();
      else if (c === "`") this.#skipBacktick();
      else if (c === "#" && atWordStart) {
        while (this.#i < s.length && s[this.#i] !== "\n") this.#i++;
      } else if (c === "(") {
        depth++;
        this.#i++;
      } else if (c === ")") {
        depth--;
        this.#i++;
        if (depth === 0) return;
      } else {
        this.#i++;
      }
      atWordStart = c === " " || c === "\t" || c === "\n" || c === ";" || c === "(";
    }
    throw new Incomplete();
  }

  #skipBraces(): void {
    const s = this.#s;
    let depth = 1;
    while (this.#i < s.length) {
      const c = s[this.#i]!;
      if (c === "\\") this.#i += 2;
      else if (c === "'") {
        const end = s.indexOf("'", this.#i + 1);
        if (end < 0) throw new Incomplete();
        this.#i = end + 1;
      } else if (c === '"') this.#skipDouble();
      else if (c === "{") {
        depth++;
        this.#i++;
      } else if (c === "}") {
        depth--;
        this.#i++;
        if (depth === 0) return;
      } else this.#i++;
    }
    throw new Incomplete();
  }

  /** After a newline: consumes the bodies of heredocs opened on the line just ended. */
  #readHeredocBodies(): void {
    const s = this.#s;
    while (this.#heredocs.length > 0) {
      const { delim, stripTabs } = this.#heredocs.shift()!;
      for (;;) {
        if (this.#i >= s.length) throw new Incomplete();
        let end = s.indexOf("\n", this.#i);
        if (end < 0) end = s.length;
        let line = s.slice(this.#i, end);
        if (stripTabs) line = line.replace(/^\t+/, "");
        this.#i = Math.min(s.length, end + 1);
        if (line === delim) break;
      }
    }
  }
}
