import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copySparse } from '../src/index.js';

const MiB = 1024 * 1024;

describe('copySparse', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'core-sparse-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('copies the bytes exactly and leaves zero blocks as holes', async () => {
    const source = join(dir, 'src.raw');
    const file = await open(source, 'w');
    await file.truncate(64 * MiB + 512); // a tail that is not a whole block
    await file.write(randomBytes(4096), 0, 4096, 10 * MiB + 3);
    await file.write(randomBytes(512), 0, 512, 64 * MiB);
    await file.close();
    const progress: number[] = [];
    const size = await copySparse(source, join(dir, 'dst.raw'), (p) => progress.push(p.bytesDone));
    expect(size).toBe(64 * MiB + 512);
    expect((await readFile(join(dir, 'dst.raw'))).equals(await readFile(source))).toBe(true);
    expect((await stat(join(dir, 'dst.raw'))).blocks * 512).toBeLessThan(4 * MiB);
    expect(progress.at(-1)).toBe(size);
  });

  it('never overwrites an existing target', async () => {
    await writeFile(join(dir, 'a'), 'a');
    await writeFile(join(dir, 'b'), 'b');
    await expect(copySparse(join(dir, 'a'), join(dir, 'b'))).rejects.toThrow(/EEXIST/);
  });
});
