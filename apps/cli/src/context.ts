import { type BaseRegistry, openBaseRegistry } from '@cloudlet/base-registry';
import type { Command } from 'commander';
import { createProgressReporter } from './progress.js';

export interface GlobalOptions {
  home?: string;
  quiet?: boolean;
}

/** What every command gets: the registry (opened lazily, closed after the command), progress and output. */
export async function withRegistry<T>(
  command: Command,
  run: (registry: BaseRegistry) => Promise<T>,
): Promise<T> {
  const { home } = command.optsWithGlobals<GlobalOptions>();
  const registry = await openBaseRegistry({
    ...(home === undefined ? {} : { home }),
    onLog: (line) => process.stderr.write(`cloudlet: ${line}\n`),
  });
  try {
    return await run(registry);
  } finally {
    registry.close();
  }
}

export function progressFor(command: Command) {
  const quiet = command.optsWithGlobals<GlobalOptions>().quiet === true;
  const reporter = createProgressReporter();
  return quiet ? { update() {}, done() {}, note() {} } : reporter;
}

export const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
