import { open } from 'node:fs/promises';

const BLOCK = 1024 * 1024;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

export interface CopyProgress {
  readonly bytesDone: number;
  readonly totalBytes: number;
}

/**
 * Copies a disk image leaving all-zero 1 MiB blocks as holes, so an 8 GiB mostly-empty disk stays small in
 * the registry. The source is only read. Reports progress per block.
 */
export async function copySparse(
  source: string,
  target: string,
  onProgress?: (progress: CopyProgress) => void,
): Promise<number> {
  const input = await open(source, 'r');
  try {
    const totalBytes = (await input.stat()).size;
    const output = await open(target, 'wx');
    try {
      await output.truncate(totalBytes);
      const buffer = Buffer.alloc(BLOCK);
      for (let at = 0; at < totalBytes; ) {
        const { bytesRead } = await input.read(buffer, 0, BLOCK, at);
        if (bytesRead === 0) throw new Error(`${source} shrank while being copied`);
        const block = buffer.subarray(0, bytesRead);
        if (!block.equals(ZERO_BLOCK.subarray(0, bytesRead))) await output.write(block, 0, bytesRead, at);
        at += bytesRead;
        onProgress?.({ bytesDone: at, totalBytes });
      }
      await output.sync();
      return totalBytes;
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}
