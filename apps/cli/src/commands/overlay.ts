import { resolve } from 'node:path';
import type { BaseRegistry } from '@cloudlet/base-registry';
import { createOverlay, type DeltaChoice } from '@cloudlet/core';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { print, progressFor, withRegistry } from '../context.js';
import { formatBytes, shortId } from '../format.js';
import { checkReadySignals, prepareFrom } from '../prepare.js';
import { positiveInt } from './base.js';

interface OverlayOptions {
  output: string;
  script?: string;
  readyWhen?: string;
  console?: boolean;
  vnc?: boolean;
  bootTimeout: number;
  codec: 'zstd' | 'xz';
  level?: number;
  delta: DeltaChoice;
  trim: boolean;
  freeMemory?: boolean;
}

/** A base given by id (or prefix) or by the path of its disk in the registry. */
function baseIdFor(registry: BaseRegistry, idOrDisk: string): string {
  if (idOrDisk.includes('/')) {
    const disk = resolve(idOrDisk);
    const base = registry.list().find((b) => b.paths.disk === disk);
    if (base === undefined) throw new InvalidArgumentError(`${disk} is not the disk of a registered base`);
    return base.id;
  }
  return registry.get(idOrDisk).id;
}

export function registerOverlay(program: Command): void {
  program
    .command('overlay')
    .description('resume a base VM, customize it, and write the difference as a VM overlay')
    .argument('<base>', 'base id (or unique prefix), or the path of a registered base disk')
    .argument('[qemuArgs...]', 'after `--`: -redir tcp:HOST::GUEST forwards, carried inside the overlay')
    .option('-o, --output <file>', 'overlay file to write', 'overlay.zip')
    .option('--script <file>', 'run these lines in the serial console shell, then snapshot')
    .option('--ready-when <regex>', 'snapshot once the serial console prints a match (before --script)')
    .option('--console', 'attach the serial console to this terminal; press Ctrl-] to snapshot')
    .option('--vnc', 'show the VM on VNC (a base made with --vnc); press Enter to snapshot')
    .option('--boot-timeout <seconds>', 'how long to wait for --ready-when or a shell', positiveInt, 300)
    .addOption(new Option('--codec <name>', 'segment compression').choices(['zstd', 'xz']).default('zstd'))
    .option('--level <n>', 'compression level (zstd 1-19, xz 0-9)', positiveInt)
    .addOption(
      new Option('--delta <mode>', 'per-chunk delta against the base')
        .choices(['auto', 'xor', 'vcdiff', 'none'])
        .default('auto'),
    )
    .option('--no-trim', 'keep disk blocks the guest trimmed (default: trimmed blocks are left out)')
    .option(
      '--free-memory',
      'drop the guest page cache before the snapshot (needs a shell on ttyS0; see docs)',
    )
    .action(async (baseArg: string, qemuArgs: string[], options: OverlayOptions, command: Command) => {
      const signals = {
        bootTimeout: options.bootTimeout,
        ...(options.script === undefined ? {} : { script: options.script }),
        ...(options.readyWhen === undefined ? {} : { readyWhen: options.readyWhen }),
        ...(options.console === undefined ? {} : { console: options.console }),
        ...(options.vnc === undefined ? {} : { vnc: options.vnc }),
      };
      checkReadySignals(signals);
      const progress = progressFor(command);
      await withRegistry(command, async (registry) => {
        const result = await createOverlay({
          registry,
          base: baseIdFor(registry, baseArg),
          output: resolve(options.output),
          qemuArgs,
          codec: options.codec,
          delta: options.delta,
          trim: options.trim,
          freeMemory: options.freeMemory === true,
          ...(options.level === undefined ? {} : { level: options.level }),
          prepare: prepareFrom(signals, (line) => progress.note(line)),
          onProgress: (p) => {
            if (p.stage === 'prepare' && p.vm)
              progress.note(`base resumed (QEMU pid ${p.vm.pid}, serial log ${p.vm.paths.serialLog})`);
            else if (p.chunks !== undefined) progress.note(`${p.stage}: ${p.chunks} changed chunks`);
          },
        });
        const { summary, stats } = result;
        print(
          `wrote ${summary.file} (${formatBytes(summary.bytes)}) for base ${shortId(summary.manifest.base.id)}`,
        );
        print(
          `  ${stats.chunks} changed chunks, ${formatBytes(stats.payloadBytes)} encoded, ` +
            `${summary.manifest.segments.length} segments, ${result.seconds.toFixed(1)} s`,
        );
      });
    });
}
