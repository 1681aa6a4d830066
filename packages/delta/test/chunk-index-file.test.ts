import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import {
  CHUNK_INDEX_HEADER_SIZE,
  type ChunkIndex,
  ChunkIndexError,
  type ChunkIndexErrorCode,
  createChunkIndex,
  readChunkIndex,
  writeChunkIndex,
} from '../src/index.js';

async function written(index: ChunkIndex): Promise<{ file: string; bytes: Buffer }> {
  const file = join(testTempDir('cloudlet-delta-'), 'index.bin');
  await writeChunkIndex(file, index);
  return { file, bytes: await readFile(file) };
}

async function failure(file: string): Promise<ChunkIndexError> {
  const err = await readChunkIndex(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChunkIndexError);
  return err as ChunkIndexError;
}

async function expectCode(bytes: Uint8Array, code: ChunkIndexErrorCode): Promise<void> {
  const file = join(testTempDir('cloudlet-delta-'), 'bad.bin');
  await writeFile(file, bytes);
  const err = await failure(file);
  expect(err.code).toBe(code);
  expect(err.file).toBe(file);
  expect(err.message).toContain(file);
  expect(err.message).toContain(code);
}

describe('chunk index files', () => {
  it('round-trips disk and memory indexes, including a short last chunk and an empty index', async () => {
    for (const [kind, count, byteLength] of [
      ['disk', 5, 5 * 4096 - 100],
      ['memory', 7, 7 * 4096],
      ['disk', 0, 0],
    ] as const) {
      const index = createChunkIndex(kind, new Uint8Array(randomBytes(count * 32)), byteLength);
      const { file, bytes } = await written(index);
      expect(bytes.length).toBe(CHUNK_INDEX_HEADER_SIZE + count * 32);
      const back = await readChunkIndex(file);
      expect(back.kind).toBe(kind);
      expect(back.chunkSize).toBe(4096);
      expect(back.count).toBe(count);
      expect(back.byteLength).toBe(byteLength);
      expect(back.hashes).toEqual(index.hashes);
      for (let i = 0; i < count; i++) expect(back.hashAt(i)).toEqual(index.hashAt(i));
    }
  });

  it('has the documented header layout', async () => {
    const index = createChunkIndex('memory', new Uint8Array(randomBytes(3 * 32)));
    const { bytes } = await written(index);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('CLDTCHIX');
    expect(bytes.readUInt16LE(8)).toBe(1);
    expect(bytes.readUInt8(10)).toBe(2);
    expect(bytes.readUInt8(11)).toBe(1);
    expect(bytes.readUInt32LE(12)).toBe(4096);
    expect(bytes.readBigUInt64LE(16)).toBe(3n);
    expect(bytes.readBigUInt64LE(24)).toBe(3n * 4096n);
    expect(new Uint8Array(bytes.subarray(64))).toEqual(index.hashes);
  });

  it('replaces an existing file and leaves no temp file behind', async () => {
    const dir = testTempDir('cloudlet-delta-');
    const file = join(dir, 'index.bin');
    await writeChunkIndex(file, createChunkIndex('disk', new Uint8Array(randomBytes(64))));
    const second = createChunkIndex('disk', new Uint8Array(randomBytes(96)));
    await writeChunkIndex(file, second);
    expect((await readChunkIndex(file)).hashes).toEqual(second.hashes);
    expect(await readdir(dir)).toEqual(['index.bin']);
  });

  it('rejects wrong magic, including files too short to hold it', async () => {
    const { bytes } = await written(createChunkIndex('disk', new Uint8Array(randomBytes(64))));
    const other = Buffer.from(bytes);
    other.write('QEVM', 0, 'latin1');
    await expectCode(other, 'bad-magic');
    await expectCode(Buffer.from('hello'), 'bad-magic');
    await expectCode(new Uint8Array(0), 'truncated');
    await expectCode(bytes.subarray(0, 5), 'truncated');
  });

  it('rejects unknown versions', async () => {
    const { bytes } = await written(createChunkIndex('disk', new Uint8Array(randomBytes(64))));
    const v2 = Buffer.from(bytes);
    v2.writeUInt16LE(2, 8);
    await expectCode(v2, 'unsupported-version');
  });

  it('rejects truncated and over-long files', async () => {
    const { bytes } = await written(createChunkIndex('disk', new Uint8Array(randomBytes(4 * 32))));
    await expectCode(bytes.subarray(0, 40), 'truncated');
    await expectCode(bytes.subarray(0, bytes.length - 1), 'truncated');
    await expectCode(bytes.subarray(0, 64 + 3 * 32), 'truncated');
    await expectCode(Buffer.concat([bytes, Buffer.alloc(32)]), 'trailing-bytes');
  });

  it('rejects headers that are out of range or inconsistent', async () => {
    const { bytes } = await written(createChunkIndex('disk', new Uint8Array(randomBytes(2 * 32)), 5000));
    const edits: [string, (b: Buffer) => void][] = [
      ['kind', (b) => b.writeUInt8(9, 10)],
      ['hash algorithm', (b) => b.writeUInt8(2, 11)],
      ['chunk size', (b) => b.writeUInt32LE(512, 12)],
      ['byte length', (b) => b.writeBigUInt64LE(3n * 4096n, 24)],
      ['huge count', (b) => b.writeBigUInt64LE(2n ** 60n, 16)],
    ];
    for (const [, edit] of edits) {
      const bad = Buffer.from(bytes);
      edit(bad);
      await expectCode(bad, 'bad-header');
    }
  });

  it('detects a flipped bit in the hash array or in the recorded digest', async () => {
    const { bytes } = await written(createChunkIndex('memory', new Uint8Array(randomBytes(10 * 32))));
    for (const at of [64, 64 + 5 * 32 + 7, bytes.length - 1, 40]) {
      const bad = Buffer.from(bytes);
      bad[at] = (bad[at] as number) ^ 0x10;
      await expectCode(bad, 'checksum-mismatch');
    }
  });

  it('refuses to write an index whose count and hashes disagree', async () => {
    const dir = testTempDir('cloudlet-delta-');
    const lying = { ...createChunkIndex('disk', new Uint8Array(64)), count: 3 };
    await expect(writeChunkIndex(join(dir, 'x'), lying)).rejects.toThrow(RangeError);
  });

  it('names the file when it does not exist', async () => {
    const file = join(testTempDir('cloudlet-delta-'), 'missing.bin');
    await expect(readChunkIndex(file)).rejects.toThrow(/ENOENT/);
  });
});

describe('createChunkIndex', () => {
  it('wraps hashes without copying and checks its arguments', () => {
    const hashes = new Uint8Array(randomBytes(3 * 32));
    const index = createChunkIndex('disk', hashes, 2 * 4096 + 1);
    expect(index.count).toBe(3);
    expect(index.hashAt(1).buffer).toBe(hashes.buffer);
    expect(index.hashAt(2)).toEqual(hashes.subarray(64, 96));
    expect(() => index.hashAt(3)).toThrow(RangeError);
    expect(() => index.hashAt(-1)).toThrow(RangeError);
    expect(() => createChunkIndex('disk', new Uint8Array(33))).toThrow(RangeError);
    expect(() => createChunkIndex('disk', hashes, 2 * 4096)).toThrow(RangeError);
    expect(() => createChunkIndex('swap' as 'disk', hashes)).toThrow(RangeError);
  });
});
