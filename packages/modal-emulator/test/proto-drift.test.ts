import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { loadModalProtos } from "../src/proto/load.js";
import { readSdkWire } from "./sdk-codecs.js";

// The subset .proto must agree with the pinned SDK's compiled codecs field by field: a bump of `modal` that
// renumbers, renames or retypes a field the emulator uses fails here, naming the field.

interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}
interface MessageDefinition {
  format: string;
  type: {
    name: string;
    field: FieldDescriptor[];
    nestedType?: { name: string; options?: { mapEntry?: boolean } | null }[];
    options?: { mapEntry?: boolean } | null;
  };
}
interface MethodDefinition {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestType: { type: { name: string } };
  responseType: { type: { name: string } };
}

const dir = mkdtempSync(join(tmpdir(), "modal-emulator-drift-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { packageDefinition } = loadModalProtos(dir);
const sdk = readSdkWire();

const SCALARS: Record<string, string> = {
  TYPE_STRING: "string",
  TYPE_BOOL: "bool",
  TYPE_INT32: "int32",
  TYPE_UINT32: "uint32",
  TYPE_INT64: "int64",
  TYPE_UINT64: "uint64",
  TYPE_FLOAT: "float",
  TYPE_DOUBLE: "double",
  TYPE_BYTES: "bytes",
};

// Type names come back relative to the referring package (`modal.client.X` from the router proto, `client.X`).
const PACKAGES = ["modal.client.", "modal.task_command_router.", "client."];

/** `.modal.client.StringMap.ContentsEntry` -> `StringMap_ContentsEntry` (ts-proto's naming). */
function sdkTypeName(protoName: string): string {
  let name = protoName.replace(/^\./, "");
  for (const p of PACKAGES) if (name.startsWith(p)) name = name.slice(p.length);
  return name.replace(/\./g, "_");
}

function camel(snake: string): string {
  return snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

const messages = Object.entries(packageDefinition as Record<string, unknown>)
  .filter(([, def]) => (def as { format?: string }).format !== undefined)
  .map(([name, def]) => [name, def as MessageDefinition] as const);

/** A map field is a repeated message whose type is a nested `mapEntry` type of the same message. */
function isMapField(def: MessageDefinition, f: FieldDescriptor): boolean {
  return (
    f.type === "TYPE_MESSAGE" &&
    (def.type.nestedType ?? []).some((n) => n.name === f.typeName && n.options?.mapEntry === true)
  );
}

test(`the SDK codecs were parsed (modal@${sdk.version})`, () => {
  expect(sdk.version).toBe("0.11.1");
  expect(sdk.messages.size).toBeGreaterThan(500);
  expect(sdk.services.get("modal.client.ModalClient")?.size).toBeGreaterThan(200);
  expect(sdk.services.get("modal.task_command_router.TaskCommandRouter")?.size).toBeGreaterThan(5);
});

describe("every message of the subset matches the SDK", () => {
  for (const [fullName, def] of messages) {
    if (def.type.options?.mapEntry) continue;
    const name = sdkTypeName(fullName);
    test(name, () => {
      const sdkFields = sdk.messages.get(name);
      expect(sdkFields, `the SDK has no codec named ${name}`).toBeDefined();
      for (const f of def.type.field) {
        const where = `${name}.${f.name} = ${f.number}`;
        const theirs = sdkFields!.get(f.number);
        expect(theirs, `${where}: the SDK has no field ${f.number}`).toBeDefined();
        expect(theirs!.name, `${where}: the SDK calls field ${f.number} ${theirs!.name}`).toBe(camel(f.name));
        const isMap = isMapField(def, f);
        // ts-proto names a map's entry type <Message>_<FieldInPascalCase>Entry; all subset maps are string->string.
        const pascal = camel(f.name).replace(/^./, (c) => c.toUpperCase());
        const ours = isMap
          ? `${name}_${pascal}Entry`
          : f.type === "TYPE_MESSAGE"
            ? sdkTypeName(f.typeName)
            : SCALARS[f.type];
        expect(theirs!.type, `${where}: type differs`).toBe(ours);
        expect(theirs!.map, `${where}: map-ness differs`).toBe(isMap);
        expect(theirs!.repeated, `${where}: repeated-ness differs`).toBe(
          f.label === "LABEL_REPEATED" && !isMap,
        );
        if (isMap) {
          const entry = sdk.messages.get(ours!);
          expect([entry?.get(1)?.type, entry?.get(2)?.type], `${where}: map<string, string> differs`).toEqual(
            ["string", "string"],
          );
        }
      }
    });
  }
});

describe("every method of the subset matches the SDK's service definitions", () => {
  for (const [service, defs] of Object.entries(packageDefinition as Record<string, unknown>)) {
    if ((defs as { format?: string }).format !== undefined) continue;
    for (const [method, def] of Object.entries(defs as Record<string, MethodDefinition>)) {
      test(`${service}/${method}`, () => {
        const theirs = sdk.services.get(service)?.get(method);
        expect(theirs, `the SDK's ${service} has no method ${method}`).toBeDefined();
        expect(theirs!.requestStream).toBe(def.requestStream);
        expect(theirs!.responseStream).toBe(def.responseStream);
        // `Empty` is google.protobuf.Empty in the SDK and a local empty message here: same wire format.
        expect(theirs!.requestType).toBe(def.requestType.type.name);
        expect(theirs!.responseType).toBe(def.responseType.type.name);
      });
    }
  }
});
