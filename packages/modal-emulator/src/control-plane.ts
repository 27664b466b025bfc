// Over 400 lines: the sandbox RPCs of the `ModalClient` service (create, list, tags, names, wait, terminate,
// tunnels, logs) share the app table and the sandbox registry, and each is short; images (images.ts), secrets
// (secrets.ts) and strict mode's rules (strict.ts) live in modules of their own.
import { posix } from "node:path";
import type { Logger } from "@agent-runtime/runtime-core";
import type { EngineImageBuilder } from "./engine-images.js";
import type { Faults } from "./faults.js";
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "./grpc-errors.js";
import type { CallContext, Handlers } from "./grpc-service.js";
import { newId, newSandboxId } from "./ids.js";
import { clampTimeoutSecs, ImageService, LONG_POLL_CAP_SECS } from "./images.js";
import { type JwtClaims, signJwt } from "./jwt.js";
import type {
  AppGetOrCreateMsg,
  EnvironmentGetOrCreateMsg,
  ImageGetOrCreateMsg,
  ImageJoinStreamingMsg,
  RouterAccessMsg,
  SandboxCreateMsg,
  SandboxGetFromNameMsg,
  SandboxGetLogsMsg,
  SandboxIdMsg,
  SandboxListMsg,
  SandboxStdinWriteMsg,
  SandboxTagMsg,
  SandboxTagsSetMsg,
  SecretGetOrCreateMsg,
  SecretSourceMsg,
} from "./messages.js";
import type { Sandbox, SandboxRegistry } from "./registry.js";
import { GenericStatus } from "./sandbox.js";
import { ENV_KEY_RE, type NamedSecrets, SecretStore } from "./secrets.js";
import { checkObjectName, checkStrictCreate, checkTags } from "./strict.js";
import type { PortRequest, TunnelInfo } from "./tunnels.js";

/** `ObjectCreationType` values the emulator understands. */
const CreationType = {
  UNSPECIFIED: 0,
  CREATE_IF_MISSING: 1,
  CREATE_FAIL_IF_EXISTS: 2,
} as const;

const NAME_RE = /^[a-zA-Z0-9._-]{1,63}$/;
const MAX_TIMEOUT_SECS = 24 * 60 * 60;

interface AppRecord {
  appId: string;
  name: string;
  environmentName: string;
}

/** Settings of the control plane. */
export interface ControlPlaneSettings {
  environments: readonly string[];
  imageBuilderVersion: string;
  tokenId: string;
  jwtKey: Buffer;
  routerUrl: () => string;
  routerJwtTtlMs: number;
  authTokenTtlMs: number;
  listPageSize: number;
  /** Behave as the real service does where the lenient emulator is kinder (see strict.ts). */
  strict: boolean;
  /** Regions strict mode accepts. */
  regions: readonly string[];
  logger: Logger;
  /** Engine mode: builds images for real. */
  imageBuilder?: EngineImageBuilder;
  /** Aborts engine builds when the emulator closes. */
  shutdown?: AbortSignal;
}

function tagsToMap(tags: readonly SandboxTagMsg[] | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const tag of tags ?? []) {
    if (!tag.tag_name) throw invalidArgument("sandbox tag names must not be empty");
    map.set(tag.tag_name, tag.tag_value ?? "");
  }
  return map;
}

function tagsToMsg(tags: Map<string, string>): SandboxTagMsg[] {
  return [...tags].map(([tag_name, tag_value]) => ({ tag_name, tag_value }));
}

/** The `modal.client.ModalClient` service: apps, environments, images, secrets and sandboxes. */
export class ControlPlane {
  readonly #s: ControlPlaneSettings;
  readonly #registry: SandboxRegistry;
  readonly #faults: Faults;
  readonly #apps = new Map<string, AppRecord>();
  readonly #appsByName = new Map<string, string>();
  readonly #envIds = new Map<string, string>();
  readonly #images: ImageService;
  readonly #secrets: SecretStore;

  constructor(
    settings: ControlPlaneSettings,
    registry: SandboxRegistry,
    faults: Faults,
    named: NamedSecrets,
  ) {
    this.#s = settings;
    this.#registry = registry;
    this.#faults = faults;
    this.#secrets = new SecretStore(named);
    for (const env of settings.environments) this.#envIds.set(env, newId("en"));
    this.#images = new ImageService({
      strict: settings.strict,
      faults,
      appExists: (appId) => this.#apps.has(appId),
      checkSecret: (secretId) => void this.#secrets.values(secretId),
      builder: settings.imageBuilder,
      shutdown: settings.shutdown,
      logger: settings.logger,
    });
  }

  /** The gRPC handlers. */
  handlers(): Handlers {
    return {
      unary: {
        AuthTokenGet: async () => this.#authTokenGet(),
        AppGetOrCreate: async (req) => this.#appGetOrCreate(req as AppGetOrCreateMsg),
        AppLookup: async (req) =>
          this.#appGetOrCreate({ ...(req as AppGetOrCreateMsg), object_creation_type: 0 }),
        EnvironmentGetOrCreate: async (req) => this.#environmentGetOrCreate(req as EnvironmentGetOrCreateMsg),
        ImageGetOrCreate: async (req) => this.#images.getOrCreate(req as ImageGetOrCreateMsg),
        SecretGetOrCreate: async (req) => {
          this.#env((req as SecretGetOrCreateMsg).environment_name);
          return this.#secrets.getOrCreate(req as SecretGetOrCreateMsg);
        },
        SandboxCreate: async (req) => this.#sandboxCreate(req as SandboxCreateMsg, false),
        SandboxCreateV2: async (req) => this.#sandboxCreate(req as SandboxCreateMsg, true),
        SandboxGetTaskId: async (req) => this.#getTaskId(req as SandboxIdMsg),
        SandboxGetTaskIdV2: async (req) => this.#getTaskId(req as SandboxIdMsg),
        TaskGetCommandRouterAccess: async (req) => this.#routerAccess(req as RouterAccessMsg),
        SandboxGetCommandRouterAccess: async (req) => this.#routerAccess(req as RouterAccessMsg),
        SandboxGetTunnels: async (req) => this.#getTunnels(req as SandboxIdMsg),
        SandboxGetTunnelsV2: async (req) => this.#getTunnels(req as SandboxIdMsg),
        SandboxWait: async (req, ctx) => this.#wait(req as SandboxIdMsg, ctx),
        SandboxWaitV2: async (req, ctx) => this.#wait(req as SandboxIdMsg, ctx),
        SandboxTerminate: async (req) => this.#terminate(req as SandboxIdMsg),
        SandboxTerminateV2: async (req) => this.#terminate(req as SandboxIdMsg),
        SandboxList: async (req) => this.#list(req as SandboxListMsg, false),
        SandboxListV2: async (req) => this.#list(req as SandboxListMsg, true),
        SandboxTagsSet: async (req) => this.#tagsSet(req as SandboxTagsSetMsg),
        SandboxTagsSetV2: async (req) => this.#tagsSet(req as SandboxTagsSetMsg),
        SandboxTagsGet: async (req) => this.#tagsGet(req as SandboxIdMsg),
        SandboxTagsGetV2: async (req) => this.#tagsGet(req as SandboxIdMsg),
        SandboxGetFromName: async (req) => this.#getFromName(req as SandboxGetFromNameMsg, false),
        SandboxGetFromNameV2: async (req) => this.#getFromName(req as SandboxGetFromNameMsg, true),
        SandboxStdinWrite: async (req) => this.#stdinWriteV1(req as SandboxStdinWriteMsg),
      },
      serverStream: {
        ImageJoinStreaming: async (req, ctx, write) =>
          this.#images.join(req as ImageJoinStreamingMsg, ctx, write),
        SandboxGetLogs: async (req, ctx, write) => this.#getLogs(req as SandboxGetLogsMsg, ctx, write),
      },
    };
  }

  /** Signs a router JWT for `sandbox`. */
  routerJwt(sandbox: Sandbox): string {
    // Rounded up: a token lives at least routerJwtTtlMs (exp has whole-second resolution).
    const claims: JwtClaims = {
      sub: sandbox.spec.taskId,
      sandbox_id: sandbox.spec.sandboxId,
      iat: Math.floor(Date.now() / 1000),
      exp: Math.ceil((Date.now() + this.#s.routerJwtTtlMs) / 1000),
    };
    return signJwt(claims, this.#s.jwtKey);
  }

  #env(name: string | undefined): string {
    const env = name || this.#s.environments[0]!;
    if (!this.#envIds.has(env)) {
      throw notFound(`Environment '${env}' not found (the emulator has: ${this.#s.environments.join(", ")})`);
    }
    return env;
  }

  #authTokenGet(): object {
    const token = signJwt(
      {
        sub: this.#s.tokenId,
        iat: Math.floor(Date.now() / 1000),
        exp: Math.ceil((Date.now() + this.#s.authTokenTtlMs) / 1000),
      },
      this.#s.jwtKey,
    );
    return { token };
  }

  #appGetOrCreate(req: AppGetOrCreateMsg): object {
    const name = req.app_name ?? "";
    if (this.#s.strict) checkObjectName(name, "App");
    else if (!NAME_RE.test(name)) throw invalidArgument(`Invalid App name '${name}'`);
    const env = this.#env(req.environment_name);
    const key = `${env}/${name}`;
    const existing = this.#appsByName.get(key);
    const type = req.object_creation_type ?? 0;
    if (existing) {
      if (type === CreationType.CREATE_FAIL_IF_EXISTS) throw alreadyExists(`App '${name}' already exists`);
      return { app_id: existing };
    }
    if (type !== CreationType.CREATE_IF_MISSING && type !== CreationType.CREATE_FAIL_IF_EXISTS) {
      throw notFound(`App '${name}' not found in environment '${env}'`);
    }
    const app: AppRecord = { appId: newId("ap"), name, environmentName: env };
    this.#apps.set(app.appId, app);
    this.#appsByName.set(key, app.appId);
    return { app_id: app.appId };
  }

  #environmentGetOrCreate(req: EnvironmentGetOrCreateMsg): object {
    const env = this.#env(req.deployment_name);
    return {
      environment_id: this.#envIds.get(env),
      metadata: {
        name: env,
        settings: { image_builder_version: this.#s.imageBuilderVersion, webhook_suffix: "modal.run" },
      },
    };
  }

  /** The current values of a secret id, or NOT_FOUND. */
  secretValues(secretId: string): Record<string, string> {
    return this.#secrets.values(secretId);
  }

  /** Environment from secret sources (`{secret_id}` or inline `{env}`), later sources winning. */
  resolveSecretSources(sources: readonly SecretSourceMsg[] | undefined): Record<string, string> {
    return this.#secrets.resolveSources(sources);
  }

  async #sandboxCreate(req: SandboxCreateMsg, v2: boolean): Promise<object> {
    const delay = this.#faults.createDelayMs;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const app = this.#apps.get(req.app_id ?? "");
    if (!app) throw notFound(`App ${req.app_id ?? "(none)"} not found`);
    const def = req.definition ?? {};
    const image = this.#images.built(def.image_id);
    if (!image) throw notFound(`Image ${def.image_id ?? "(none)"} not found or not built`);
    if (this.#s.strict) checkStrictCreate(req, v2, this.#s.regions);
    const timeoutSecs = def.timeout_secs || 300;
    if (timeoutSecs > MAX_TIMEOUT_SECS) {
      throw invalidArgument(`timeout_secs ${timeoutSecs} exceeds the maximum of ${MAX_TIMEOUT_SECS} (24 h)`);
    }
    const workdir = def.workdir || "/";
    if (!posix.isAbsolute(workdir))
      throw invalidArgument(`workdir must be an absolute path, got: ${workdir}`);
    const name = def.name || undefined;
    if (name !== undefined) {
      if (!this.#s.strict && (!NAME_RE.test(name) || /^(ap|sb)-/.test(name)))
        throw invalidArgument(`Invalid Sandbox name '${name}'`);
      const clash = this.#registry
        .all()
        .find((sb) => sb.running && sb.spec.appId === app.appId && sb.spec.name === name);
      if (clash) throw alreadyExists(`Sandbox with name '${name}' already exists in App '${app.name}'`);
    }
    const ports: PortRequest[] = [];
    for (const p of def.open_ports?.ports ?? []) {
      const port = p.port ?? 0;
      if (port < 1 || port > 65535) throw invalidArgument(`invalid port ${port}`);
      if (ports.some((q) => q.port === port)) throw invalidArgument(`port ${port} is listed twice`);
      ports.push({ port, unencrypted: p.unencrypted === true });
    }
    const env: Record<string, string> = { ...(def.environment_variables?.contents ?? {}) };
    for (const id of def.secret_ids ?? []) Object.assign(env, this.#secrets.values(id));
    Object.assign(env, req.ephemeral_secrets?.contents ?? {});
    Object.assign(env, this.resolveSecretSources(req.secret_sources));
    for (const key of Object.keys(env)) {
      if (!ENV_KEY_RE.test(key))
        throw invalidArgument(`environment variable name ${JSON.stringify(key)} is invalid`);
    }
    const gpu = def.resources?.gpu_config?.gpu_type || undefined;
    // Strict: a V2 sandbox keeps no tags (dropped here, by SandboxTagsSetV2, and none from SandboxTagsGetV2).
    // Source: tags are not among the V2 features in the SDK's `experimentalCreate` doc, the Python client's
    // `_experimental_create` says "Features like tags ... are not supported" and its `get_tags`/`set_tags` call
    // `_ensure_v1`. GUESS for the form: dropped rather than refused, as a service ignores a field it lacks.
    const tags = this.#s.strict && v2 ? new Map<string, string>() : tagsToMap(req.tags);
    const sandbox = await this.#registry.create({
      sandboxId: newSandboxId(v2),
      v2,
      taskId: newId("ta"),
      appId: app.appId,
      appName: app.name,
      environmentName: app.environmentName,
      name,
      tags,
      imageId: image.imageId,
      engineImage: image.engineImage,
      command: def.entrypoint_args ?? [],
      workdir,
      env,
      timeoutSecs,
      idleTimeoutSecs: def.idle_timeout_secs || undefined,
      ports,
      milliCpu: def.resources?.milli_cpu || undefined,
      memoryMiB: def.resources?.memory_mb || undefined,
      milliCpuMax: def.resources?.milli_cpu_max || undefined,
      memoryMiBMax: def.resources?.memory_mb_max || undefined,
      regions: [...(def.scheduler_placement?.regions ?? [])],
      gpu: gpu
        ? `${gpu}${(def.resources?.gpu_config?.count ?? 1) > 1 ? `:${def.resources?.gpu_config?.count}` : ""}`
        : undefined,
      createdAt: this.#registry.nextCreatedAt(),
    });
    const metadata = { app_id: app.appId };
    if (!v2) return { sandbox_id: sandbox.spec.sandboxId, metadata };
    return {
      sandbox_id: sandbox.spec.sandboxId,
      task_id: sandbox.spec.taskId,
      tunnels: sandbox.tunnels.map(tunnelMsg),
      metadata,
      command_router_access: { jwt: this.routerJwt(sandbox), url: this.#s.routerUrl() },
    };
  }

  // Handles reach the router through these two calls, so they count as activity for the idle timeout.
  #getTaskId(req: SandboxIdMsg): object {
    const sb = this.#registry.get(req.sandbox_id);
    if (sb.result) return { task_result: sb.result };
    sb.touch();
    return { task_id: sb.spec.taskId };
  }

  #routerAccess(req: RouterAccessMsg): object {
    const sb = req.sandbox_id ? this.#registry.get(req.sandbox_id) : this.#registry.getByTask(req.task_id);
    if (!sb.running) {
      throw failedPrecondition(
        `Sandbox ${sb.spec.sandboxId} has finished; its command router is not available`,
      );
    }
    return { jwt: this.routerJwt(sb), url: this.#s.routerUrl() };
  }

  // Tunnels exist from creation on, so there is nothing to long-poll for.
  #getTunnels(req: SandboxIdMsg): object {
    const sb = this.#registry.get(req.sandbox_id);
    if (sb.result) return { result: sb.result, tunnels: [] };
    return { tunnels: sb.tunnels.map(tunnelMsg) };
  }

  async #wait(req: SandboxIdMsg, ctx: CallContext): Promise<object> {
    const sb = this.#registry.get(req.sandbox_id);
    const result = await sb.wait(clampTimeoutSecs(req.timeout) * 1000, ctx.signal);
    return { result, metadata: { app_id: sb.spec.appId, result } };
  }

  #terminate(req: SandboxIdMsg): object {
    const sb = this.#registry.get(req.sandbox_id);
    if (sb.result) return { existing_result: sb.result };
    sb.stop({ status: GenericStatus.TERMINATED, exitcode: 137 });
    return {};
  }

  #list(req: SandboxListMsg, v2Rpc: boolean): object {
    let appIds: Set<string>;
    if (req.app_id) {
      if (!this.#apps.has(req.app_id)) throw notFound(`App ${req.app_id} not found`);
      appIds = new Set([req.app_id]);
    } else {
      const env = this.#env(req.environment_name);
      appIds = new Set([...this.#apps.values()].filter((a) => a.environmentName === env).map((a) => a.appId));
    }
    const want = tagsToMap(req.tags);
    const before = req.before_timestamp || Number.POSITIVE_INFINITY;
    // Strict: the V1 SandboxList does not see V2 sandboxes. Source: the SDK's `experimentalCreate` doc ("V2
    // sandboxes created with this method are not currently returned by client.sandboxes.list()", which is
    // SandboxList when sandboxV2 is off) and its `experimentalList` doc (SandboxListV2 "lists all Sandboxes
    // (both v1 and v2)").
    const hideV2 = this.#s.strict && !v2Rpc;
    const page = this.#registry
      .all()
      .filter(
        (sb) =>
          appIds.has(sb.spec.appId) &&
          !(hideV2 && sb.spec.v2) &&
          (req.include_finished || sb.running) &&
          sb.spec.createdAt < before &&
          [...want].every(([k, v]) => sb.spec.tags.get(k) === v),
      )
      .sort((a, b) => b.spec.createdAt - a.spec.createdAt)
      .slice(0, this.#s.listPageSize);
    return {
      sandboxes: page.map((sb) => ({
        id: sb.spec.sandboxId,
        created_at: sb.spec.createdAt,
        app_id: sb.spec.appId,
        // Strict: left empty. Source: proto comment on `SandboxInfo.tags`, "TODO: Not yet exposed in client
        // library." (modal@0.11.1 index.d.ts). Filtering by the request's tags still works; read a sandbox's
        // tags with SandboxTagsGet (the SDK's getTags()).
        tags: this.#s.strict ? [] : tagsToMsg(sb.spec.tags),
        name: sb.spec.name ?? "",
        image_id: sb.spec.imageId,
        timeout_secs: sb.spec.timeoutSecs,
        idle_timeout_secs: sb.spec.idleTimeoutSecs ?? 0,
        task_info: {
          id: sb.spec.taskId,
          sandbox_id: sb.spec.sandboxId,
          started_at: sb.startedAt,
          finished_at: sb.finishedAt,
          result: sb.result,
        },
      })),
    };
  }

  #tagsGet(req: SandboxIdMsg): object {
    return { tags: tagsToMsg(this.#registry.get(req.sandbox_id).spec.tags) };
  }

  #tagsSet(req: SandboxTagsSetMsg): object {
    const sb = this.#registry.get(req.sandbox_id);
    if (this.#s.strict) checkTags(req.tags, "SandboxTagsSet");
    const tags = tagsToMap(req.tags);
    // Strict: a V2 sandbox keeps no tags (see #sandboxCreate).
    if (this.#s.strict && sb.spec.v2) return {};
    sb.spec.tags.clear();
    for (const [k, v] of tags) sb.spec.tags.set(k, v);
    return {};
  }

  #getFromName(req: SandboxGetFromNameMsg, v2: boolean): object {
    const env = this.#env(req.environment_name);
    const appName = req.app_name ?? "";
    const appId = this.#appsByName.get(`${env}/${appName}`);
    if (!appId) throw notFound(`App '${appName}' not found in environment '${env}'`);
    const name = req.sandbox_name ?? "";
    const candidates = this.#registry
      .all()
      .filter((sb) => sb.spec.appId === appId && sb.spec.name === name && sb.spec.v2 === v2)
      .sort((a, b) => b.spec.createdAt - a.spec.createdAt);
    const found = candidates.find((sb) => sb.running) ?? (req.include_terminated ? candidates[0] : undefined);
    if (!found) throw notFound(`Sandbox with name '${name}' not found in App '${appName}'`);
    return { sandbox_id: found.spec.sandboxId, metadata: { app_id: appId, result: found.result } };
  }

  async #getLogs(
    req: SandboxGetLogsMsg,
    ctx: CallContext,
    write: (m: object) => Promise<void>,
  ): Promise<void> {
    const sb = this.#registry.get(req.sandbox_id);
    const fd = req.file_descriptor ?? 1;
    if (fd !== 1 && fd !== 2) {
      await write({ entry_id: req.last_entry_id ?? "0", eof: true, task_id: sb.spec.taskId });
      return;
    }
    const buffer = fd === 1 ? sb.stdout : sb.stderr;
    let offset = Number.parseInt(req.last_entry_id ?? "", 10) || 0;
    const timeoutMs = clampTimeoutSecs(req.timeout) * 1000 || LONG_POLL_CAP_SECS * 1000;
    const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
    for await (const slice of buffer.read(offset, deadline)) {
      offset = slice.offset + slice.data.length;
      await write({
        task_id: sb.spec.taskId,
        sandbox_id: sb.spec.sandboxId,
        entry_id: String(offset),
        items: [{ data: slice.data.toString("utf8"), file_descriptor: fd }],
      });
    }
    if (buffer.closed && buffer.length === offset) {
      await write({ task_id: sb.spec.taskId, entry_id: String(offset), eof: true });
    }
  }

  #stdinWriteV1(req: SandboxStdinWriteMsg): object {
    const sb = this.#registry.get(req.sandbox_id);
    if (!sb.running) throw failedPrecondition(`Sandbox ${sb.spec.sandboxId} has finished`);
    sb.writeStdinV1(req.index ?? 0, req.input ?? Buffer.alloc(0), req.eof === true);
    return {};
  }
}

function tunnelMsg(t: TunnelInfo): object {
  return {
    host: t.host,
    port: t.port,
    container_port: t.containerPort,
    ...(t.unencryptedPort !== undefined
      ? { unencrypted_host: t.unencryptedHost, unencrypted_port: t.unencryptedPort }
      : {}),
  };
}
