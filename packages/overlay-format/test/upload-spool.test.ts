import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../../test-vms/support/temp-dir.js';
import { spoolUpload } from '../src/upload-spool.js';
import { chunkSourceConformance } from './chunk-source.suite.js';
import { pieces } from './upload-fixtures.js';

const spoolDir = testTempDir('overlay-format-');
const options = { spoolDir, maxBytes: 1 << 30, idleTimeoutMs: 5000 };

chunkSourceConformance('spoolUpload (reads wait for the body)', (bytes) =>
  spoolUpload(pieces(bytes).body, options),
);

describe('spoolUpload', () => {
  it('answers a read as soon as its bytes are in, and removes its file on close', async () => {
    const bytes = Buffer.alloc(50_000, 7);
    const body = pieces(bytes, { stallAt: 20_000 });
    const spool = await spoolUpload(body.body, options);
    expect(Buffer.from(await spool.read(10_000, 10_000)).equals(bytes.subarray(10_000, 20_000))).toBe(true);
    expect(spool.received()).toBe(20_000);
    await spool.close();
    expect(readdirSync(spoolDir)).toEqual([]);
  });
});
