import type { StreamPrologue } from '@cloudlet/memory-snapshot';

/** Names of the overlay side entries that carry what synthesis re-emits around the memory pages. */
export const PROLOGUE_BLOB = 'memory-prologue.json';
export const DEVICE_STATE_BLOB = 'device-state.bin';

/** The stream prologue as JSON (its raw configuration bytes base64, mrAddr as a decimal string). */
export function encodePrologue(prologue: StreamPrologue): Uint8Array {
  const json = {
    ...prologue,
    configBytes: Buffer.from(prologue.configBytes).toString('base64'),
    blocks: prologue.blocks.map((b) => ({
      ...b,
      ...(b.mrAddr === undefined ? {} : { mrAddr: String(b.mrAddr) }),
    })),
  };
  return Buffer.from(JSON.stringify(json));
}

export function decodePrologue(bytes: Uint8Array): StreamPrologue {
  const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as Omit<
    StreamPrologue,
    'configBytes' | 'blocks'
  > & {
    configBytes: string;
    blocks: { name: string; length: number; mrAddr?: string }[];
  };
  return {
    ...json,
    configBytes: Buffer.from(json.configBytes, 'base64'),
    blocks: json.blocks.map((b) => ({
      name: b.name,
      length: b.length,
      ...(b.mrAddr === undefined ? {} : { mrAddr: BigInt(b.mrAddr) }),
    })),
  };
}
