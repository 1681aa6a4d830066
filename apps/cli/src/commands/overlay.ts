import { resolve } from 'node:path';
import { createOverlay, type DeltaChoice } from '@cloudlet/core';
import { type Command, Option } from 'commander';
import { baseIdFor } from '../base-arg.js';
import { print, progressFor, withRegistry } from '../context.js';
import { formatBytes, shortId } from '../format.js';
import {
  positiveInt,
  prepareFrom,
  type ReadyOptions,
  readySignalsFrom,
  withReadyOptions,
} from '../prepare.js';

interface OverlayOptions extends ReadyOptions {
  output: string;
  codec: 'zstd' | 'xz';
  level?: number;
  delta: DeltaChoice;
  trim: boolean;
  freeMemory?: boolean;
}

export function registerOverlay(program: Command): void {
  const command = program
    .command('overlay')
    .description('resume a base VM, customize it, and write the difference as a VM overlay')
    .argument('<base>', 'base id (or unique prefix), or the path of a registered base disk')
    .argument('[qemuArgs...]', 'after `--`: -redir tcp:HOST::GUEST forwards, carried inside the overlay')
    .option('-o, --output <file>', 'overlay file to write', 'overlay.zip');
  withReadyOptions(command, 'show the VM on VNC (a base made with --vnc); press Enter to snapshot')
    .addOption(new Option('--codec <name>', 'segment compression').choices(['zstd', 'xz']).default('zstd'))
    .option('--level <n>', 'compression level (zstd 1-19, xz 0-9)', positiveInt)
    .addOption(
      new Option('--delta <mode>', 'per-chunk delta against the base')
        .choices(['auto', 'xor', 'vcdiff', 'none'])
        .default('auto'),
    )
    .option('--no-trim', 'keep disk blocks the guest trimmed (default: trimmed blocks are left out)')
    .option('--free-memory', 'require that free guest pages stay out (checks the guest has init_on_free=1)')
    .action(async (baseArg: string, qemuArgs: string[], options: OverlayOptions, command: Command) => {
      const signals = readySignalsFrom(options);
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
            else if (p.bytesDone !== undefined) progress.update({ ...p, stage: `scanning ${p.stage}` });
            else if (p.chunks !== undefined) {
              progress.done();
              progress.note(`${p.stage}: ${p.chunks} changed chunks`);
            }
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
