/**
 * The parts of the Docker Engine API's documents this client reads and writes (API 1.41; Podman's compatible
 * service answers the same shapes). Fields the engine adds beyond these are kept but not typed.
 */

/** `GET /version`. */
export interface EngineVersion {
  Version?: string;
  ApiVersion?: string;
  Components?: { Name: string; Version: string }[];
  [key: string]: unknown;
}

/** `GET /images/{name}/json`. */
export interface ImageInspect {
  Id: string;
  RepoTags?: string[] | null;
  Created?: string;
  Size?: number;
  Config?: { Labels?: Record<string, string> | null; [key: string]: unknown };
  [key: string]: unknown;
}

/** A port binding on the host. */
export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

/** The `HostConfig` of a create. */
export interface HostConfig {
  Binds?: string[];
  NetworkMode?: string;
  PortBindings?: Record<string, PortBinding[]>;
  NanoCpus?: number;
  Memory?: number;
  MemorySwap?: number;
  PidsLimit?: number;
  AutoRemove?: boolean;
  CapDrop?: string[];
  CapAdd?: string[];
  SecurityOpt?: string[];
  ReadonlyRootfs?: boolean;
  Tmpfs?: Record<string, string>;
  Init?: boolean;
  [key: string]: unknown;
}

/** `POST /containers/create`. */
export interface ContainerCreateBody {
  Image: string;
  Cmd?: string[];
  Entrypoint?: string[] | null;
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
  ExposedPorts?: Record<string, Record<string, never>>;
  Tty?: boolean;
  OpenStdin?: boolean;
  StopSignal?: string;
  HostConfig?: HostConfig;
  [key: string]: unknown;
}

/** `GET /containers/{id}/json`. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Created: string;
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    Error?: string;
    OOMKilled?: boolean;
    Pid?: number;
    StartedAt?: string;
    FinishedAt?: string;
  };
  Config: {
    Image: string;
    Labels?: Record<string, string> | null;
    Env?: string[] | null;
    [key: string]: unknown;
  };
  HostConfig?: HostConfig;
  NetworkSettings?: {
    Ports?: Record<string, PortBinding[] | null> | null;
    IPAddress?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** One row of `GET /containers/json`. */
export interface ContainerSummary {
  Id: string;
  Names?: string[];
  Image: string;
  Created: number;
  State: string;
  Status?: string;
  Labels?: Record<string, string> | null;
  [key: string]: unknown;
}

/** `POST /containers/{id}/exec`. */
export interface ExecCreateBody {
  Cmd: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Tty?: boolean;
}

/** `GET /exec/{id}/json`. */
export interface ExecInspect {
  Running: boolean;
  ExitCode: number | null;
  Pid?: number;
  [key: string]: unknown;
}
