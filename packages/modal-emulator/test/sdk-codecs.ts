import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** One field of a message as the SDK's compiled ts-proto codec decodes it. */
export interface SdkField {
  /** camelCase field name. */
  name: string;
  /** Scalar reader (`string`, `uint32`, ...) or the message codec's name (`Sandbox`, `StringMap_ContentsEntry`). */
  type: string;
  repeated: boolean;
  map: boolean;
}

/** A method of a service definition in the SDK. */
export interface SdkMethod {
  requestType: string;
  responseType: string;
  requestStream: boolean;
  responseStream: boolean;
}

/** The pinned SDK's wire view: message codecs by name, and service methods. */
export interface SdkWire {
  version: string;
  messages: Map<string, Map<number, SdkField>>;
  services: Map<string, Map<string, SdkMethod>>;
}

/**
 * Parses `modal`'s bundled ts-proto codecs: each `var X = { encode(...), decode(...) { ... case N: ... } }`
 * gives field numbers, names and types; each `var XDefinition = { fullName, methods: {...} }` gives methods.
 */
export function readSdkWire(): SdkWire {
  const require = createRequire(import.meta.url);
  // `modal` exports only its entry points: find dist/ from the resolved entry.
  const distDir = dirname(require.resolve("modal"));
  const version = (
    JSON.parse(readFileSync(join(distDir, "..", "package.json"), "utf8")) as { version: string }
  ).version;
  const source = readFileSync(join(distDir, "index.js"), "utf8");

  const messages = new Map<string, Map<number, SdkField>>();
  const codecRe =
    /^var (\w+) = \{\n {2}encode\((?:message|_), writer = new BinaryWriter\(\)\) \{\n[\s\S]*?\n {2}\},\n {2}decode\(input, length\) \{\n([\s\S]*?)\n {2}\},\n {2}fromJSON/gm;
  for (const m of source.matchAll(codecRe)) {
    const fields = new Map<number, SdkField>();
    for (const c of m[2]!.matchAll(/case (\d+): \{\n([\s\S]*?)\n {8}\}/g)) {
      const body = c[2]!;
      const name = /message\.(\w+)/.exec(body)?.[1];
      const type = (/(\w+)\.decode\(reader/.exec(body) ?? /reader\.(\w+)\(\)/.exec(body))?.[1];
      if (!name || !type) continue;
      fields.set(Number(c[1]), {
        name,
        type,
        repeated: /\.push\(/.test(body),
        map: /\[entry\d+\.key\]/.test(body),
      });
    }
    messages.set(m[1]!, fields);
  }

  const services = new Map<string, Map<string, SdkMethod>>();
  const serviceRe =
    /^var \w+Definition = \{\n {2}name: "\w+",\n {2}fullName: "([\w.]+)",\n {2}methods: \{([\s\S]*?)\n {2}\}\n\};/gm;
  const methodRe =
    /name: "(\w+)",\n\s+requestType: (\w+),\n\s+requestStream: (true|false),\n\s+responseType: (\w+),\n\s+responseStream: (true|false)/g;
  for (const s of source.matchAll(serviceRe)) {
    const methods = new Map<string, SdkMethod>();
    for (const m of s[2]!.matchAll(methodRe)) {
      methods.set(m[1]!, {
        requestType: m[2]!,
        requestStream: m[3] === "true",
        responseType: m[4]!,
        responseStream: m[5] === "true",
      });
    }
    services.set(s[1]!, methods);
  }
  return { version, messages, services };
}
