import { resolve } from 'node:path';
import { createBase } from '@cloudlet/core';
import { type Command, InvalidArgumentError } from 'commander';
import { print, progressFor, withRegistry } from '../context.js';
import { formatBytes, shortId } from '../format.js';
import { checkReadySignals, prepareFrom } from '../prepare.js';

interface BaseOptions {
  memory: number;
  cpus: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  label?: string;
  script?: string;
  readyWhen?: string;
  console?: boolean;
  vnc?: boolean;
  bootTimeout: number;
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

export function registerBase(program: Command): void {
  program
    .command('base')
    .description('create a base VM: boot a copy of <disk>, prepare it, snapshot disk + memory, register it')
    .argument('<disk>', 'raw disk image (copied; never modified)')
    .argument('[qemuArgs...]', 'extra QEMU arguments after `--` (e.g. -redir tcp:2222::22)')
    .option('--memory <MiB>', 'guest memory in MiB', positiveInt, 512)
    .option('--cpus <n>', 'virtual CPUs', positiveInt, 1)
    .option('--kernel <file>', 'boot this kernel directly (stored with the base)')
    .option('--initrd <file>', 'initrd for --kernel')
    .option('--append <cmdline>', 'kernel command line for --kernel')
    .option('--label <text>', 'a name to show in list-base')
    .option('--script <file>', 'run these lines in the serial console shell, then snapshot')
    .option('--ready-when <regex>', 'snapshot once the serial console prints a match (before --script)')
    .option('--console', 'attach the serial console to this terminal; press Ctrl-] to snapshot')
    .option('--vnc', 'show a VNC display (unix socket); press Enter to snapshot')
    .option('--boot-timeout <seconds>', 'how long to wait for --ready-when or a shell', positiveInt, 300)
    .addHelpText(
      'after',
      '\nExample:\n  cloudlet base disk.img --memory 1024 --script setup.sh -- -redir tcp:8080::80\n',
    )
    .action(async (disk: string, qemuArgs: string[], options: BaseOptions, command: Command) => {
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
        const result = await createBase({
          registry,
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
