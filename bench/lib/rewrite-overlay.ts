// An overlay's records and blobs written again with another segment codec: exactly what `cloudlet overlay
// --codec C --level L` writes for the same customization, without running the VM again.
import { stat } from 'node:fs/promises';
import {
  createOverlayWriter,
  type OverlayRecord,
  openOverlay,
  type SegmentCodecName,
  segmentCodec,
} from '../../packages/overlay-format/dist/index.js';

/** Writes `file` from `source` with `codec` at `level`; its size and the seconds it took (read + encode). */
export async function rewriteOverlay(
  source: string,
  file: string,
  codec: SegmentCodecName,
  level: number,
): Promise<{ bytes: number; seconds: number }> {
  const reader = await openOverlay(source);
  try {
    const { manifest } = reader;
    const started = performance.now();
    const writer = createOverlayWriter({ file, codec: segmentCodec(codec), level });
    for await (const record of reader.records()) await writer.add(record as OverlayRecord);
    for (const blob of manifest.blobs) await writer.addBlob(blob.name, await reader.readBlob(blob.name));
    await writer.finish({ base: manifest.base, vm: manifest.vm, createdAt: manifest.createdAt });
    return { bytes: (await stat(file)).size, seconds: (performance.now() - started) / 1000 };
  } finally {
    await reader.close();
  }
}
