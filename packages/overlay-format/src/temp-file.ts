import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** A hidden name beside `file` (same filesystem, so the final rename is atomic). */
export function tempPathBeside(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}
