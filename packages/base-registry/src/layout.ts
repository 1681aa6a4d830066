import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** File names inside a base folder; fixed, so the spec and the package can name them portably. */
export const BASE_FILES = {
  disk: 'disk.raw',
  memory: 'memory.snap',
  diskIndex: 'disk.idx',
  memoryIndex: 'memory.idx',
  manifest: 'base.json',
  kernel: 'kernel',
  initrd: 'initrd',
} as const;

/** Where everything lives under one registry home. */
export interface HomeLayout {
  readonly home: string;
  readonly database: string;
  readonly bases: string;
  readonly tmp: string;
  baseDir(id: string): string;
}

export function homeLayout(home: string): HomeLayout {
  const root = resolve(home);
  return {
    home: root,
    database: join(root, 'registry.db'),
    bases: join(root, 'bases'),
    tmp: join(root, 'tmp'),
    baseDir: (id) => join(root, 'bases', id),
  };
}

/** `$CLOUDLET_HOME`, else `~/.cloudlet`. */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.CLOUDLET_HOME;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.cloudlet');
}

export const BASE_ID_PATTERN = /^[0-9a-f]{64}$/;
