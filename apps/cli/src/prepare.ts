import { open, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { runGuestScript, waitForShell } from '@cloudlet/core';
import type { RunningVm } from '@cloudlet/qemu-driver';
import { type Command, InvalidArgumentError } from 'commander';

/** How the user tells `cloudlet base`/`overlay` that the VM is ready to be snapshotted. */
export interface ReadySignals {
  readonly script?: string;
  readonly readyWhen?: string;
  readonly console?: boolean;
  readonly vnc?: boolean;
  readonly bootTimeout: number;
}

/** The key that ends an attached console session (Ctrl-], as in telnet). */
export const CONSOLE_DETACH = '\x1d';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/** The flags by which a user says "ready", shared by `cloudlet base` and `cloudlet overlay`. */
export function withReadyOptions(command: Command, vncHelp: string): Command {
  return command
    .option('--script <file>', 'run these lines in the serial console shell, then snapshot')
    .option('--ready-when <regex>', 'snapshot once the serial console prints a match (before --script)')
    .option('--console', 'attach the serial console to this terminal; press Ctrl-] to snapshot')
    .option('--vnc', vncHelp)
    .option('--boot-timeout <seconds>', 'how long to wait for --ready-when or a shell', positiveInt, 300);
}

export interface ReadyOptions {
  script?: string;
  readyWhen?: string;
  console?: boolean;
  vnc?: boolean;
  bootTimeout: number;
}

/** The parsed flags as ReadySignals, checked (at least one given, a valid regex) before anything starts. */
export function readySignalsFrom(options: ReadyOptions): ReadySignals {
  const signals: ReadySignals = {
    bootTimeout: options.bootTimeout,
    ...(options.script === undefined ? {} : { script: options.script }),
    ...(options.readyWhen === undefined ? {} : { readyWhen: options.readyWhen }),
    ...(options.console === undefined ? {} : { console: options.console }),
    ...(options.vnc === undefined ? {} : { vnc: options.vnc }),
  };
  checkReadySignals(signals);
  return signals;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function checkReadySignals(signals: ReadySignals): void {
  const given = [signals.script, signals.readyWhen, signals.console, signals.vnc].filter(
    (s) => s !== undefined,
  );
  if (given.length === 0) {
    throw new UsageError(
      'say when the VM is ready to snapshot: --script FILE, --ready-when REGEX, --console or --vnc',
    );
  }
  if (signals.readyWhen !== undefined) new RegExp(signals.readyWhen); // a bad regex fails before QEMU starts
}

/** Streams the serial log to stdout and stdin to the guest until the user presses Ctrl-]. */
async function attachConsole(vm: RunningVm): Promise<void> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new UsageError('--console needs a terminal on stdin');
  process.stderr.write('Attached to the serial console. Press Ctrl-] when the VM is ready.\r\n');
  const log = await open(vm.paths.serialLog, 'r');
  let position = (await log.stat()).size;
  const buffer = Buffer.alloc(65536);
  const pump = setInterval(async () => {
    const { bytesRead } = await log.read(buffer, 0, buffer.length, position);
    position += bytesRead;
    if (bytesRead > 0) process.stdout.write(buffer.subarray(0, bytesRead));
  }, 50);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    await new Promise<void>((resolve) => {
      stdin.on('data', (data: Buffer) => {
        const text = data.toString('latin1');
        const end = text.indexOf(CONSOLE_DETACH);
        if (end >= 0) {
          if (end > 0) vm.console.write(text.slice(0, end));
          resolve();
        } else vm.console.write(text);
      });
    });
  } finally {
    clearInterval(pump);
    stdin.setRawMode(false);
    stdin.pause();
    stdin.removeAllListeners('data');
    await log.close();
    process.stderr.write('\r\nDetached.\n');
  }
}

async function waitForEnter(vm: RunningVm): Promise<void> {
  process.stderr.write(
    `VNC display on unix socket ${vm.paths.vncSocket} (e.g. \`vncviewer ${vm.paths.vncSocket}\`).\n` +
      'Prepare the VM, then press Enter here to snapshot it.\n',
  );
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    await rl.question('');
  } finally {
    rl.close();
  }
}

/** Builds the `prepare` step from the flags, in this order: ready-when, script, console, vnc. */
export function prepareFrom(signals: ReadySignals, log: (line: string) => void) {
  return async (vm: RunningVm) => {
    const timeoutMs = signals.bootTimeout * 1000;
    if (signals.readyWhen !== undefined) {
      log(`waiting for /${signals.readyWhen}/ on the serial console`);
      await vm.console.waitFor(new RegExp(signals.readyWhen), timeoutMs);
    }
    if (signals.script !== undefined) {
      const text = await readFile(signals.script, 'utf8');
      if (signals.readyWhen === undefined) {
        log('waiting for a shell on the serial console');
        await waitForShell(vm, timeoutMs);
      }
      await runGuestScript(vm, text, { onCommand: (command) => log(`guest$ ${command}`) });
    }
    if (signals.console === true) await attachConsole(vm);
    if (signals.vnc === true) await waitForEnter(vm);
  };
}
