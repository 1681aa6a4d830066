// Small, valid QEMU migration streams for unit tests of the overlay pipeline (no QEMU needed).
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type RamPage, type StreamPrologue, writeMigrationStream } from '@cloudlet/memory-snapshot';

export const PAGE = 4096;

/** A pc-machine prologue with the given RAM blocks (configuration = be32 length + machine type). */
export function syntheticPrologue(blocks: { name: string; length: number }[]): StreamPrologue {
  const machineType = 'pc-i440fx-7.2';
  const configBytes = Buffer.alloc(4 + machineType.length);
  configBytes.writeUInt32BE(machineType.length, 0);
  configBytes.write(machineType, 4, 'latin1');
  return {
    version: 3,
    machineType,
    capabilities: [],
    configBytes,
    ramSectionId: 2,
    ramInstanceId: 0,
    ramVersionId: 4,
    blocks,
    hasSectionFooters: true,
  };
}

/** One FULL device section ("timer", id 3) with a footer, then QEMU_VM_EOF. */
export function syntheticDeviceTail(): Uint8Array {
  const name = Buffer.from('timer', 'latin1');
  const head = Buffer.alloc(1 + 4 + 1);
  head.writeUInt8(0x04, 0);
  head.writeUInt32BE(3, 1);
  head.writeUInt8(name.length, 5);
  const ids = Buffer.alloc(8);
  ids.writeUInt32BE(0, 0);
  ids.writeUInt32BE(1, 4);
  const footer = Buffer.from([0x7e, 0, 0, 0, 3, 0x00]);
  return Buffer.concat([head, name, ids, Buffer.alloc(16, 1), footer]);
}

/** A page full of one byte value. */
export const filledPage = (value: number): Uint8Array => Buffer.alloc(PAGE, value);

export async function writeSyntheticStream(
  file: string,
  prologue: StreamPrologue,
  pages: RamPage[],
): Promise<void> {
  const chunks = writeMigrationStream({ prologue, pages, deviceTail: syntheticDeviceTail() });
  await pipeline(Readable.from(chunks), createWriteStream(file));
}

export async function* streamOf(prologue: StreamPrologue, pages: RamPage[]): AsyncGenerator<Uint8Array> {
  yield* writeMigrationStream({ prologue, pages, deviceTail: syntheticDeviceTail() });
}
