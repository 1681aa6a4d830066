// Child process for crash.test.ts: imports a package and can freeze at a chosen point so the
// parent can SIGKILL it there.
// Usage: crash-child.ts <home> <zip> <pause-at: a progress stage | decompress-half | after-rename | none>
import { writeSync } from 'node:fs';
import { openBaseRegistry } from '../src/index.js';

const [home, zip, pauseAt] = process.argv.slice(2);
if (home === undefined || zip === undefined || pauseAt === undefined)
  throw new Error('usage: <home> <zip> <pause-at>');

const say = (line: string) => writeSync(1, `${line}\n`);
/** Blocks this thread (worker threads keep running) until the parent kills the process. */
const freeze = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);

const registry = await openBaseRegistry({
  home,
  hooks: {
    afterRename: (dir) => {
      say(`renamed ${dir}`);
      if (pauseAt === 'after-rename') freeze();
    },
  },
});
const seen = new Set<string>();
const { base } = await registry.importBase(zip, {
  onProgress: ({ stage, bytesDone, totalBytes }) => {
    if (pauseAt === 'decompress-half' && stage === 'decompress' && bytesDone >= (totalBytes ?? 0) / 2) {
      say('stage decompress-half');
      freeze();
    }
    if (seen.has(stage) || bytesDone === 0) return;
    seen.add(stage);
    say(`stage ${stage}`);
    if (stage === pauseAt) freeze();
  },
});
say(`done ${base.id}`);
