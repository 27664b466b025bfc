/**
 * The encoded forms under which a secret value can show up in output: raw, JSON-escaped (also with
 * `\uXXXX` escapes, as Python's `json.dumps` writes), URL-encoded (also form-encoded), base64 and base64url
 * (at every byte alignment, so `base64("user:" + token)` in a Basic auth header is caught), CRLF line endings
 * (a terminal rewrites `\n`), and each line of a multi-line value (a PEM key printed in part). The redactor
 * also finds the forms made only of base64/token characters when line breaks split them (wrapped output).
 */
export function encodedForms(value: string, minLength: number): string[] {
  const forms = new Set<string>([value]);
  const json = JSON.stringify(value).slice(1, -1);
  forms.add(json);
  forms.add(asciiJson(json));
  const url = encodeURIComponent(value);
  forms.add(url);
  forms.add(url.replace(/%20/g, "+"));
  forms.add(url.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));

  const bytes = Buffer.from(value, "utf8");
  const padded = bytes.toString("base64");
  forms.add(padded);
  forms.add(padded.replace(/\+/g, "-").replace(/\//g, "_"));
  for (const core of base64Cores(bytes)) {
    forms.add(core);
    forms.add(core.replace(/\+/g, "-").replace(/\//g, "_"));
  }

  if (value.includes("\n")) {
    forms.add(value.replace(/\r?\n/g, "\r\n"));
    for (const line of value.split(/\r?\n/)) {
      const trimmed = line.trim();
      // PEM armour lines (`-----BEGIN ... KEY-----`) are public text, not secret material.
      if (trimmed.length >= minLength && !/^-----[A-Z0-9 ]+-----$/.test(trimmed)) forms.add(trimmed);
    }
  }
  return [...forms].filter((form) => form.length >= minLength);
}

/** JSON text with every non-ASCII code unit written as a lowercase `\uXXXX` escape. */
function asciiJson(json: string): string {
  return json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * The base64 characters that depend only on `bytes`, when `bytes` starts at each of the three byte offsets
 * inside a larger base64 text (no padding, partial characters at both ends dropped).
 */
function base64Cores(bytes: Buffer): string[] {
  const cores: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const text = Buffer.concat([Buffer.alloc(offset), bytes]).toString("base64");
    const start = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * (offset + bytes.length)) / 6);
    if (end > start) cores.push(text.slice(start, end));
  }
  return cores;
}
