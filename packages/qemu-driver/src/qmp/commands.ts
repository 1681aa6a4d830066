import { QmpClosedError } from '../errors.js';
import type { ExecuteOptions } from './client.js';
import type { MigrationCapability, MigrationInfo, MigrationParameters, StatusInfo } from './types.js';

type Execute = <T>(command: string, args?: Record<string, unknown>, options?: ExecuteOptions) => Promise<T>;

/** Typed wrappers for the QMP commands this project uses. */
export interface QmpCommands {
  stop(): Promise<void>;
  cont(): Promise<void>;
  queryStatus(): Promise<StatusInfo>;
  migrateSetParameters(parameters: MigrationParameters): Promise<void>;
  migrateSetCapabilities(capabilities: readonly MigrationCapability[]): Promise<void>;
  /** Starts an outgoing migration (returns at once; watch `MIGRATION` events or `queryMigrate`). */
  migrate(uri: string): Promise<void>;
  /** Starts listening for an incoming migration (QEMU launched with `-incoming defer`). */
  migrateIncoming(uri: string): Promise<void>;
  queryMigrate(): Promise<MigrationInfo>;
  /** QEMU exits at once; the connection may close before or after the (empty) answer. */
  quit(): Promise<void>;
  /** ACPI power button; the guest decides what to do. */
  systemPowerdown(): Promise<void>;
}

export function qmpCommands(execute: Execute): QmpCommands {
  const run = async (command: string, args?: Record<string, unknown>) => {
    await execute<unknown>(command, args);
  };
  return {
    stop: () => run('stop'),
    cont: () => run('cont'),
    queryStatus: () => execute<StatusInfo>('query-status'),
    migrateSetParameters: (parameters) => run('migrate-set-parameters', { ...parameters }),
    migrateSetCapabilities: (capabilities) =>
      run('migrate-set-capabilities', { capabilities: [...capabilities] }),
    migrate: (uri) => run('migrate', { uri }),
    migrateIncoming: (uri) => run('migrate-incoming', { uri }),
    queryMigrate: () => execute<MigrationInfo>('query-migrate'),
    quit: () =>
      run('quit').catch((error: unknown) => {
        if (!(error instanceof QmpClosedError)) throw error; // QEMU may hang up before answering
      }),
    systemPowerdown: () => run('system_powerdown'),
  };
}
