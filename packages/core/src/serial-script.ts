import { type RunningVm, SerialTimeoutError } from '@cloudlet/qemu-driver';

/** A command of a customization script failed in the guest. */
export class GuestScriptError extends Error {
  override readonly name = 'GuestScriptError';
  constructor(
    readonly line: number,
    readonly command: string,
    readonly status: number,
    readonly output: string,
  ) {
    super(`script line ${line}: \`${command}\` exited with status ${status}${output ? `: ${output}` : ''}`);
  }
}

/**
 * Waits until a shell answers on the serial console. Marker commands sent before the shell runs are lost
 * or echoed unanswered, so each try has a short timeout and is repeated until `timeoutMs`.
 */
export async function waitForShell(vm: RunningVm, timeoutMs = 300_000, tryMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await vm.console.run('true', { timeoutMs: tryMs });
      return;
    } catch (error) {
      if (!(error instanceof SerialTimeoutError) || Date.now() >= deadline) throw error;
    }
  }
}

/** The commands of a script file: one per line; blank lines and `#` comments skipped. */
export function scriptCommands(text: string): { line: number; command: string }[] {
  return text
    .split('\n')
    .map((raw, i) => ({ line: i + 1, command: raw.trim() }))
    .filter(({ command }) => command !== '' && !command.startsWith('#'));
}

export interface RunScriptOptions {
  /** Per command (default 120 s). */
  readonly timeoutMs?: number;
  readonly onCommand?: (command: string, output: string) => void;
}

/** Runs each command in the guest's console shell; stops at the first non-zero exit status. */
export async function runGuestScript(vm: RunningVm, text: string, options: RunScriptOptions = {}) {
  for (const { line, command } of scriptCommands(text)) {
    const result = await vm.console.runWithStatus(command, { timeoutMs: options.timeoutMs ?? 120_000 });
    options.onCommand?.(command, result.output);
    if (result.status !== 0) throw new GuestScriptError(line, command, result.status, result.output);
  }
}
