import { type ChunkResolver, createDeltaCodecs, decodeChunk } from '@cloudlet/delta';
import type { ChunkSpace, OverlayRecord } from '@cloudlet/overlay-format';
import { readChunkSync } from '../chunk-file.js';
import type { RamPages } from '../ram-pages.js';
import { OverlayMismatchError } from './errors.js';

/** Where decoded overlay chunks can be read back when a later record copies one ('self'). */
export type OverlayChunkReader = (space: ChunkSpace, index: number) => Promise<Uint8Array | undefined>;

export interface RecordDecoderSources {
  readonly baseRam: RamPages;
  /** An open descriptor of the base's raw disk. */
  readonly baseDisk: number;
  readonly overlayChunk: OverlayChunkReader;
}

/** Decodes overlay records into chunk bytes against the base (the one decoder of apply and synthesis). */
export type RecordDecoder = (record: OverlayRecord) => Promise<Uint8Array>;

export async function createRecordDecoder(sources: RecordDecoderSources): Promise<RecordDecoder> {
  const codecs = await createDeltaCodecs();
  const { baseRam, baseDisk } = sources;
  return async (record) => {
    const { encoding } = record;
    // decodeChunk's resolver is synchronous: fetch the copied chunk first.
    const copied =
      encoding.kind === 'self' ? await sources.overlayChunk(encoding.space, encoding.index) : undefined;
    const resolver: ChunkResolver = {
      baseMemoryPage: (i) => baseRam.pageSync(i),
      baseDiskChunk: (i) => readChunkSync(baseDisk, i),
      overlayChunk: (space, i) => {
        if (copied === undefined)
          throw new OverlayMismatchError(
            `${record.space} chunk ${record.index} copies ${space} chunk ${i}, not decoded before it`,
          );
        return copied;
      },
      sameplaceBase: () =>
        record.space === 'memory' ? baseRam.pageSync(record.index) : readChunkSync(baseDisk, record.index),
    };
    return decodeChunk(encoding, resolver, codecs);
  };
}
