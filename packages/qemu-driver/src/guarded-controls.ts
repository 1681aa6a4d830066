import type { Clock } from './clock.js';
import { DetachError } from './errors.js';
import { whileAttached } from './exit-guarded.js';
import type { QemuProcess } from './qemu-process.js';
import type { QmpClient } from './qmp/client.js';
import { qmpCommands } from './qmp/commands.js';
import type { SerialConsole } from './serial/console.js';

// The QMP client and console handed to users: any call cut short by QEMU's exit rejects with a
// QemuExitedError that carries QEMU's stderr, rather than a bare "connection closed".

export function guardQmp(qmp: QmpClient, proc: QemuProcess, clock: Clock): QmpClient {
  const execute: QmpClient['execute'] = (command, args, options) =>
    whileAttached(proc, clock, `QMP ${command}`, () => qmp.execute(command, args, options));
  return {
    ...qmp,
    execute,
    ...qmpCommands(execute),
    // quit makes QEMU exit by design; the plain client already treats the hang-up as success.
    quit: () => (proc.isDetached() ? execute('quit') : qmp.quit()),
    waitForEvent: (name, predicate, timeoutMs) =>
      whileAttached(proc, clock, `event ${name}`, () => qmp.waitForEvent(name, predicate, timeoutMs)),
  };
}

export function guardConsole(console: SerialConsole, proc: QemuProcess, clock: Clock): SerialConsole {
  return {
    ...console,
    waitFor: (pattern, timeoutMs) =>
      whileAttached(proc, clock, `console wait for ${String(pattern)}`, () =>
        console.waitFor(pattern, timeoutMs),
      ),
    run: (command, options) =>
      whileAttached(proc, clock, `console command ${command}`, () => console.run(command, options)),
    runWithStatus: (command, options) =>
      whileAttached(proc, clock, `console command ${command}`, () => console.runWithStatus(command, options)),
    write: (text) => {
      if (proc.isDetached()) throw new DetachError('detached', 'console write: the VM is detached');
      console.write(text);
    },
  };
}
