import { hash } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { CHUNK_SIZE, HASH_SIZE } from './chunk.js';
import { type ChunkIndex, type ChunkSpace, createChunkIndex } from './chunk-index.js';
import { ChunkIndexError } from './errors.js';

/*
 * Chunk index file, little-endian (all integers), version 1:
 *
 *   offset size  field
 *        0    8  magic "CLDTCHIX"
 *        8    2  format version (1)
 *       10    1  kind: 1 = disk, 2 = memory
 *       11    1  hash algorithm: 1 = sha256
 *       12    4  chunk size (4096)
 *       16    8  chunk count n
 *       24    8  byte length covered (disk image size; n × 4096 for memory)
 *       32   32  sha256 of the hash array below (catches bit rot and torn copies)
 *       64 32×n  sha256 of chunk 0, 1, …, n − 1, in chunk order (zero chunks included)
 *
 * Unlike Elijah's header-less 44-byte records (offset, length, hash; disk entries deduplicated and
 * in dict order), the position is the chunk number, so the file is 32 bytes per chunk, maps
 * straight into memory, and also says what the base held at each place (for same-place deltas).
 */
export const CHUNK_INDEX_MAGIC = 'CLDTCHIX';
export const CHUNK_INDEX_VERSION = 1;
export const CHUNK_INDEX_HEADER_SIZE = 64;

const KIND_CODE: Record<ChunkSpace, number> = { disk: 1, memory: 2 };
const HASH_SHA256 = 1;

function encodeHeader(index: ChunkIndex): Buffer {
  const header = Buffer.alloc(CHUNK_INDEX_HEADER_SIZE);
  header.write(CHUNK_INDEX_MAGIC, 0, 'latin1');
  header.writeUInt16LE(CHUNK_INDEX_VERSION, 8);
  header.writeUInt8(KIND_CODE[index.kind], 10);
  header.writeUInt8(HASH_SHA256, 11);
  header.writeUInt32LE(index.chunkSize, 12);
  header.writeBigUInt64LE(BigInt(index.count), 16);
  header.writeBigUInt64LE(BigInt(index.byteLength), 24);
  header.set(hash('sha256', index.hashes, 'buffer'), 32);
  return header;
}

/**
 * Writes `index` to `file` atomically: a sibling temp file renamed into place, so a crash leaves
 * either the old file or the complete new one.
 */
export async function writeChunkIndex(file: string, index: ChunkIndex): Promise<void> {
  if (index.hashes.length !== index.count * HASH_SIZE) {
    throw new RangeError(`index says ${index.count} chunks but holds ${index.hashes.length} hash bytes`);
  }
  const temp = `${file}.${process.pid}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writev([encodeHeader(index), index.hashes]);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(temp, file);
}

function u64(buf: Buffer, at: number, file: string, field: string): number {
  const value = buf.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new ChunkIndexError('bad-header', file, `${field} ${value}`);
  return Number(value);
}

/** Reads and fully validates a chunk index file. Throws ChunkIndexError for anything untrustworthy. */
export async function readChunkIndex(file: string): Promise<ChunkIndex> {
  const buf = await readFile(file);
  const magic = Buffer.from(CHUNK_INDEX_MAGIC, 'latin1');
  const seen = Math.min(buf.length, magic.length);
  if (!buf.subarray(0, seen).equals(magic.subarray(0, seen))) {
    throw new ChunkIndexError('bad-magic', file, `starts with ${buf.subarray(0, seen).toString('hex')}`);
  }
  if (buf.length < CHUNK_INDEX_HEADER_SIZE) {
    throw new ChunkIndexError('truncated', file, `${buf.length} bytes, shorter than the header`);
  }
  const version = buf.readUInt16LE(8);
  if (version !== CHUNK_INDEX_VERSION) {
    throw new ChunkIndexError(
      'unsupported-version',
      file,
      `version ${version}, this reader knows ${CHUNK_INDEX_VERSION}`,
    );
  }
  const kindCode = buf.readUInt8(10);
  const kind = kindCode === KIND_CODE.disk ? 'disk' : kindCode === KIND_CODE.memory ? 'memory' : undefined;
  if (kind === undefined) throw new ChunkIndexError('bad-header', file, `kind code ${kindCode}`);
  const algorithm = buf.readUInt8(11);
  if (algorithm !== HASH_SHA256) throw new ChunkIndexError('bad-header', file, `hash algorithm ${algorithm}`);
  const chunkSize = buf.readUInt32LE(12);
  if (chunkSize !== CHUNK_SIZE) throw new ChunkIndexError('bad-header', file, `chunk size ${chunkSize}`);
  const count = u64(buf, 16, file, 'chunk count');
  const byteLength = u64(buf, 24, file, 'byte length');
  if (Math.ceil(byteLength / CHUNK_SIZE) !== count) {
    throw new ChunkIndexError('bad-header', file, `byte length ${byteLength} does not span ${count} chunks`);
  }
  const expected = CHUNK_INDEX_HEADER_SIZE + count * HASH_SIZE;
  if (buf.length < expected) {
    throw new ChunkIndexError('truncated', file, `${buf.length} bytes, header says ${expected}`);
  }
  if (buf.length > expected) {
    throw new ChunkIndexError('trailing-bytes', file, `${buf.length} bytes, header says ${expected}`);
  }
  // A plain Uint8Array view (not a Buffer), like every other index's hashes.
  let hashes = new Uint8Array(buf.buffer, buf.byteOffset + CHUNK_INDEX_HEADER_SIZE, count * HASH_SIZE);
  if (!hash('sha256', hashes, 'buffer').equals(buf.subarray(32, 64))) {
    throw new ChunkIndexError('checksum-mismatch', file, 'hash array does not match the header digest');
  }
  // The dedup lookup reads hashes as 32-bit words, which needs 4-byte alignment.
  if (hashes.byteOffset % 8 !== 0) hashes = Uint8Array.from(hashes);
  return createChunkIndex(kind, hashes, byteLength);
}
