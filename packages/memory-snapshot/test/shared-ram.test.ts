import { describe, expect, it } from 'vitest';
import { MigrationStreamError, withSharedRamBlock, writeMigrationStream } from '../src/index.js';
import {
  buildStream,
  chunked,
  collect,
  concat,
  DEFAULT_DEVICES,
  deviceTailBytes,
  PAGE,
  patternPage,
  readAll,
} from './stream-builder.js';

const blocks = [
  { name: 'pc.ram', length: 32 * PAGE },
  { name: 'pc.bios', length: 4 * PAGE },
];

const prologueOf = async (capabilities: string[] = []) =>
  (
    await readAll(
      chunked(
        buildStream({
          blocks: capabilities.length === 0 ? blocks : blocks.map((b) => ({ ...b, mrAddr: 0n })),
          sections: [[]],
          capabilities,
        }).bytes,
      ),
    )
  ).prologue;

describe('withSharedRamBlock', () => {
  it('adds x-ignore-shared and the block addresses; the stream reads back with them', async () => {
    const shared = withSharedRamBlock(await prologueOf(), 'pc.ram');
    expect(shared.capabilities).toEqual(['x-ignore-shared']);
    expect(shared.blocks.map((b) => b.mrAddr)).toEqual([0n, 0n]);
    const pages = [{ block: 'pc.bios', offset: PAGE, data: patternPage(3) }];
    const deviceTail = deviceTailBytes(DEFAULT_DEVICES, true);
    const bytes = concat(await collect(writeMigrationStream({ prologue: shared, pages, deviceTail })));
    const back = await readAll(chunked(bytes));
    expect({ ...back.prologue, configBytes: null }).toEqual({ ...shared, configBytes: null });
    expect(Buffer.from(back.prologue.configBytes).equals(Buffer.from(shared.configBytes))).toBe(true);
    expect(back.pages).toEqual(pages);
  });

  it('writes the configuration as QEMU does with the capability on (the test builder, byte for byte)', async () => {
    const shared = withSharedRamBlock(await prologueOf(), 'pc.ram');
    const fromQemuLayout = await prologueOf(['x-ignore-shared']);
    expect(Buffer.from(shared.configBytes).equals(Buffer.from(fromQemuLayout.configBytes))).toBe(true);
  });

  it('leaves a stream that has the capability already alone, refuses unknown blocks and other capabilities', async () => {
    const already = await prologueOf(['x-ignore-shared']);
    expect(withSharedRamBlock(already, 'pc.ram')).toBe(already);
    expect(() => withSharedRamBlock(already, 'pc.rum')).toThrow(/no RAM block "pc.rum"/);
    expect(() => withSharedRamBlock({ ...already, capabilities: ['validate-uuid'] }, 'pc.ram')).toThrow(
      MigrationStreamError,
    );
  });
});
