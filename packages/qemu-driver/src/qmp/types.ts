/** An asynchronous QMP event, e.g. `MIGRATION` or `STOP`. */
export interface QmpEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
  readonly timestamp: { readonly seconds: number; readonly microseconds: number };
}

/** The `QMP` member of QEMU's greeting. */
export interface QmpGreeting {
  readonly version: {
    readonly qemu: { readonly major: number; readonly minor: number; readonly micro: number };
    readonly package: string;
  };
  readonly capabilities: readonly string[];
}

/** `query-status`. `status` is e.g. running, paused, postmigrate, inmigrate, shutdown. */
export interface StatusInfo {
  readonly running: boolean;
  readonly singlestep?: boolean;
  readonly status: string;
}

/** `query-migrate` (the fields we read; QEMU sends more). */
export interface MigrationInfo {
  /** none, setup, active, completed, failed, cancelled, ... */
  readonly status?: string;
  readonly 'error-desc'?: string;
  readonly 'total-time'?: number;
  readonly ram?: { readonly transferred: number; readonly total: number; readonly duplicate: number };
  readonly [field: string]: unknown;
}

/** `migrate-set-parameters` arguments we use; QEMU accepts many more. */
export interface MigrationParameters {
  /** Bytes per second. QEMU's default (128 MiB/s) throttles even zero pages; raise it for snapshots. */
  readonly 'max-bandwidth'?: number;
  readonly 'downtime-limit'?: number;
  readonly [parameter: string]: unknown;
}

export interface MigrationCapability {
  readonly capability: string;
  readonly state: boolean;
}
