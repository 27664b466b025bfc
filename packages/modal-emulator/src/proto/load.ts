import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type GrpcObject, loadPackageDefinition, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync, type PackageDefinition, type Options as ProtoLoaderOptions } from "@grpc/proto-loader";
import { MODAL_API_PROTO, MODAL_ROUTER_PROTO, PROTO_FILES } from "./modal-proto.js";

/**
 * How the emulator decodes messages: proto field names (snake_case), uint64 as JS numbers, enums as numbers,
 * no defaults filled in (absent fields are `undefined`), and oneof virtual keys.
 */
export const PROTO_LOADER_OPTIONS: ProtoLoaderOptions = {
  keepCase: true,
  longs: Number,
  enums: Number,
  defaults: false,
  oneofs: true,
};

/** The loaded subset protos. */
export interface LoadedProtos {
  /** The proto-loader definition of both files (message descriptors are used by the drift test). */
  packageDefinition: PackageDefinition;
  /** `modal.client.ModalClient`. */
  modalClient: ServiceClientConstructor;
  /** `modal.task_command_router.TaskCommandRouter`. */
  taskCommandRouter: ServiceClientConstructor;
}

/** Writes the embedded protos under `dir` (proto-loader reads files) and loads them. */
export function loadModalProtos(dir: string): LoadedProtos {
  const apiPath = join(dir, PROTO_FILES.api);
  const routerPath = join(dir, PROTO_FILES.router);
  mkdirSync(dirname(apiPath), { recursive: true });
  writeFileSync(apiPath, MODAL_API_PROTO);
  writeFileSync(routerPath, MODAL_ROUTER_PROTO);
  const packageDefinition = loadSync([apiPath, routerPath], { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] });
  const grpcObject = loadPackageDefinition(packageDefinition);
  return {
    packageDefinition,
    modalClient: pick(grpcObject, ["modal", "client", "ModalClient"]),
    taskCommandRouter: pick(grpcObject, ["modal", "task_command_router", "TaskCommandRouter"]),
  };
}

function pick(root: GrpcObject, path: readonly string[]): ServiceClientConstructor {
  let node: unknown = root;
  for (const part of path) node = (node as Record<string, unknown>)[part];
  if (typeof node !== "function") throw new Error(`proto service ${path.join(".")} is missing`);
  return node as ServiceClientConstructor;
}
