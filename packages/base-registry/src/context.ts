import type { RegistryDatabase } from './database.js';
import { RegistryError } from './errors.js';
import type { HomeLayout } from './layout.js';

/** Fault points for crash tests: called synchronously at the named moment. */
export interface RegistryHooks {
  /** The staged folder has just been renamed to bases/<id>; its row is not committed yet. */
  afterRename?: (baseDir: string) => void;
}

/** What the registry's parts share: the home, the database and the injected dependencies. */
export interface RegistryContext {
  readonly layout: HomeLayout;
  readonly db: RegistryDatabase;
  readonly now: () => Date;
  readonly fetch: typeof globalThis.fetch;
  readonly log: (message: string) => void;
  readonly hooks: RegistryHooks;
  readonly diskIndexWorkers: number | undefined;
  readonly isOpen: () => boolean;
}

export function assertOpen(ctx: RegistryContext): void {
  if (!ctx.isOpen()) throw new RegistryError('invalid-state', 'the base registry is closed');
}
