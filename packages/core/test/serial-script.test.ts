import type { RunningVm } from '@cloudlet/qemu-driver';
import { describe, expect, it } from 'vitest';
import { GuestScriptError, runGuestScript, scriptCommands } from '../src/index.js';

/** A VM whose console answers from a table: enough to drive runGuestScript. */
function fakeVm(statuses: Record<string, number>, ran: string[]): RunningVm {
  const console = {
    runWithStatus: async (command: string) => {
      ran.push(command);
      return { output: `out of ${command}`, status: statuses[command] ?? 0 };
    },
  };
  return { console } as unknown as RunningVm;
}

describe('guest scripts', () => {
  it('skips blank lines and comments and keeps line numbers', () => {
    expect(scriptCommands('# setup\n\necho a\n  echo b  \n#x\n')).toEqual([
      { line: 3, command: 'echo a' },
      { line: 4, command: 'echo b' },
    ]);
  });

  it('runs every command in order', async () => {
    const ran: string[] = [];
    await runGuestScript(fakeVm({}, ran), 'echo a\necho b\n');
    expect(ran).toEqual(['echo a', 'echo b']);
  });

  it('stops at the first failing command and names its line and status', async () => {
    const ran: string[] = [];
    const error = await runGuestScript(fakeVm({ false: 1 }, ran), 'echo a\nfalse\necho never\n').catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(GuestScriptError);
    expect(error.message).toBe('script line 2: `false` exited with status 1: out of false');
    expect(ran).toEqual(['echo a', 'false']);
  });
});
