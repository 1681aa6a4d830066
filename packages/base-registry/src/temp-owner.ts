import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Folders under tmp/ carry their owner in their name: `<kind>-<pid>-<start>-<random>`, where start
 * is the process start time (clock ticks since boot, from /proc; 0 where unknown) so a recycled pid
 * is not mistaken for the owner. A name is complete from the moment mkdir returns, so a concurrent
 * open() never sees an unowned folder of a live process (a pid file written afterwards would leave
 * that window open).
 */
export type TempKind = 'stage' | 'import' | 'trash';

const TEMP_NAME = /^(stage|import|trash)-(\d+)-(\d+)-[0-9a-f]{12}$/;

export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Field 22; the command name (field 2) may contain spaces, so count from its closing paren.
    const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return ticks === undefined ? undefined : Number(ticks);
  } catch {
    return undefined;
  }
}

let selfStart: number | undefined;

export function tempName(kind: TempKind): string {
  selfStart ??= processStartTicks(process.pid) ?? 0;
  return `${kind}-${process.pid}-${selfStart}-${randomBytes(6).toString('hex')}`;
}

/**
 * Whether the process that made a tmp/ entry may still be using it. Names that are not ours have
 * no owner (false); a pid that exists with a different start time is a recycled pid (false).
 */
export function tempOwnerAlive(name: string): boolean {
  const match = TEMP_NAME.exec(name);
  if (!match) return false;
  const pid = Number(match[2]);
  const start = Number(match[3]);
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === 0) return true;
  const actual = processStartTicks(pid);
  return actual === undefined || actual === start;
}
