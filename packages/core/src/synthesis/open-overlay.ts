import {
  OverlayFormatError,
  type OverlayReader,
  openOverlay,
  openOverlaySource,
} from '@cloudlet/overlay-format';
import type { SynthesisStats } from './types.js';

export interface OpenedOverlay {
  readonly reader: OverlayReader;
  readonly kind: SynthesisStats['source'];
  size(): Promise<number>;
  networkBytes(): number;
}

/** A location is opened here (a download is spooled into the VM's folder); a reader is taken as it is. */
export async function openForSynthesis(
  overlay: string | OverlayReader,
  workDir: string,
): Promise<OpenedOverlay> {
  if (typeof overlay !== 'string') {
    const bytes = overlay.segments.reduce((n, s) => n + s.compressedBytes, 0);
    return { reader: overlay, kind: 'reader', size: async () => bytes, networkBytes: () => 0 };
  }
  let received = 0;
  const source = await openOverlaySource(overlay, {
    spoolDir: workDir,
    onBytes: (bytes) => {
      received = bytes;
    },
  });
  const reader = await openOverlay(source).catch(async (error: unknown) => {
    await source.close?.();
    throw namingSource(error, overlay);
  });
  return { reader, kind: source.kind, size: () => source.size(), networkBytes: () => received };
}

/** The reader's errors say what is wrong, not where: name the overlay the user gave. */
function namingSource(error: unknown, location: string): unknown {
  if (!(error instanceof OverlayFormatError) || error.message.includes(location)) return error;
  return new OverlayFormatError(error.code, `${location}: ${error.message}`, { cause: error });
}
