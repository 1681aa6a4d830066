import { resolve } from 'node:path';
import { createBase } from '@cloudlet/core';
import type { Command } from 'commander';
import { type BackendOptions, driverFrom, withBackendOptions } from '../backend.js';
import { print, progressFor, withRegistry } from '../context.js';
import { formatBytes, shortId } from '../format.js';
import {
  positiveInt,
  prepareFrom,
  type ReadyOptions,
  readySignalsFrom,
  withReadyOptions,
} from '../prepare.js';

interface BaseOptions extends ReadyOptions, BackendOptions {
  memory: number;
  cpus: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  label?: string;
}

export function registerBase(program: Command): void {
  const command = program
    .command('base')
    .description('create a base VM: boot a copy of <disk>, prepare it, snapshot disk + memory, register it')
    .argument('<disk>', 'raw disk image (copied; never modified)')
    .argument('[qemuArgs...]', 'extra QEMU arguments after `--` (e.g. -redir tcp:2222::22)')
    .option('--memory <MiB>', 'guest memory in MiB', positiveInt, 512)
    .option('--cpus <n>', 'virtual CPUs', positiveInt, 1)
    .option('--kernel <file>', 'boot this kernel directly (stored with the base)')
    .option('--initrd <file>', 'initrd for --kernel')
    .option('--append <cmdline>', 'kernel command line for --kernel')
    .option('--label <text>', 'a name to show in list-base');
  withBackendOptions(command);
  withReadyOptions(command, 'show a VNC display (unix socket); press Enter to snapshot')
    .addHelpText(
      'after',
      '\nExample:\n  cloudlet base disk.img --memory 1024 --script setup.sh -- -redir tcp:8080::80\n',
    )
    .action(async (disk: string, qemuArgs: string[], options: BaseOptions, command: Command) => {
      const signals = readySignalsFrom(options);
      const progress = progressFor(command);
      const driver = driverFrom(options);
      await withRegistry(command, async (registry) => {
        const result = await createBase({
          registry,
          ...driver,
          disk: resolve(disk),
          memoryMiB: options.memory,
          cpus: options.cpus,
          qemuArgs,
          ...(options.kernel === undefined ? {} : { kernel: resolve(options.kernel) }),
          ...(options.initrd === undefined ? {} : { initrd: resolve(options.initrd) }),
          ...(options.append === undefined ? {} : { append: options.append }),
          ...(options.label === undefined ? {} : { label: options.label }),
          ...(options.vnc === true ? { vnc: true } : {}),
          prepare: prepareFrom(signals, (line) => progress.note(line)),
          onProgress: (p) => {
            if (p.stage === 'boot' && p.vm)
              progress.note(`booting (QEMU pid ${p.vm.pid}, serial log ${p.vm.paths.serialLog})`);
            else if (p.stage === 'snapshot') progress.note('snapshotting memory and disk');
            else if (p.stage !== 'prepare') progress.update(p);
          },
        });
        progress.done();
        const { base } = result;
        print(
          result.alreadyPresent
            ? `base ${base.id} is already registered (same disk, memory and spec); nothing new stored`
            : `created base ${base.id}`,
        );
        print(
          `  disk ${formatBytes(base.diskBytes)}, memory snapshot ${formatBytes(base.memoryBytes)} (${shortId(base.id)})`,
        );
      });
    });
}
