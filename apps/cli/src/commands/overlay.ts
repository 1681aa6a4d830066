import { resolve } from 'node:path';
import { createOverlay, type DeltaChoice, profileOverlay, type SynthesizedVm } from '@cloudlet/core';
import type { VmSpec } from '@cloudlet/qemu-driver';
import { type Command, Option } from 'commander';
import { type BackendOptions, driverFrom, withBackendOptions } from '../backend.js';
import { baseIdFor } from '../base-arg.js';
import { print, progressFor, withRegistry } from '../context.js';
import { formatBytes, shortId } from '../format.js';
import {
  positiveInt,
  prepareFrom,
  type ReadyOptions,
  readySignalsFrom,
  UsageError,
  withReadyOptions,
} from '../prepare.js';

interface OverlayOptions extends ReadyOptions, BackendOptions {
  output: string;
  codec: 'zstd' | 'xz';
  level?: number;
  delta: DeltaChoice;
  trim: boolean;
  freeMemory?: boolean;
  profile?: string | boolean;
}

export function registerOverlay(program: Command): void {
  const command = program
    .command('overlay')
    .description('resume a base VM, customize it, and write the difference as a VM overlay')
    .argument('<base>', 'base id (or unique prefix), or the path of a registered base disk')
    .argument('[qemuArgs...]', 'after `--`: -redir tcp:HOST::GUEST forwards, carried inside the overlay')
    .option('-o, --output <file>', 'overlay file to write', 'overlay.zip');
  withBackendOptions(command);
  withReadyOptions(command, 'show the VM on VNC (a base made with --vnc); press Enter to snapshot')
    .addOption(
      new Option(
        '--codec <name>',
        'segment compression (xz: ~0.9× the bytes of an app, 2-3× slower to decompress)',
      )
        .choices(['zstd', 'xz'])
        .default('zstd'),
    )
    .option('--level <n>', 'compression level (zstd 1-19, default 19; xz 0-9, default 6)', positiveInt)
    .addOption(
      new Option('--delta <mode>', 'per-chunk delta against the base')
        .choices(['auto', 'xor', 'vcdiff', 'none'])
        .default('auto'),
    )
    .option('--no-trim', 'keep disk blocks the guest trimmed (default: trimmed blocks are left out)')
    .option(
      '--profile [path]',
      'resume the overlay once with early start, record the memory pages and disk chunks touched until GET ' +
        'path (default /) answers through the first forwarded port, and put them first (for --early-start)',
    )
    .option('--free-memory', 'require that free guest pages stay out (checks the guest has init_on_free=1)')
    .action(async (baseArg: string, qemuArgs: string[], options: OverlayOptions, command: Command) => {
      const signals = readySignalsFrom(options);
      const progress = progressFor(command);
      const driver = driverFrom(options);
      await withRegistry(command, async (registry) => {
        const result = await createOverlay({
          registry,
          ...driver,
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
        if (options.profile !== undefined) {
          const path = typeof options.profile === 'string' ? options.profile : '/';
          const profiled = await profileOverlay({
            registry,
            overlay: summary.file,
            until: (vm) => untilAnswered(vm, path),
            portForwards: guestForwards(summary.manifest.vm.spec),
          });
          print(
            `profiled: ${profiled.memoryTouched.length} of ${profiled.memoryRecords} memory pages and ` +
              `${profiled.touched.length} of ${profiled.diskRecords} disk chunks touched before ` +
              `GET ${path} answered; they come first now (${formatBytes(profiled.summary.bytes)}, ` +
              `${profiled.seconds.toFixed(1)} s)`,
          );
        }
      });
    });
}

/** The overlay's forwards with host port 0: a profile run must not need the ports the overlay names. */
function guestForwards(spec: VmSpec) {
  const forwards = spec.nics[0]?.portForwards ?? [];
  if (forwards.length === 0)
    throw new UsageError('--profile needs a forwarded port to ask the app (-- -redir tcp:0::PORT)');
  return forwards.map((f) => ({ ...f, hostPort: 0 }));
}

/** Polls GET path through the first forward until any HTTP answer (the app is up), for up to 2 minutes. */
async function untilAnswered(vm: SynthesizedVm, path: string): Promise<void> {
  const forward = vm.endpoints.portForwards[0];
  if (forward === undefined) throw new UsageError('--profile: the VM has no forwarded port');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${forward.hostPort}${path}`, { signal: AbortSignal.timeout(10_000) });
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new UsageError(`--profile: GET ${path} never answered (${String(error)})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
