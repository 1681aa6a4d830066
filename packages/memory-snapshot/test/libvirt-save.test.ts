import { describe, expect, it } from 'vitest';
import {
  buildLibvirtSaveHeader,
  isLibvirtSaveImage,
  LIBVIRT_SAVE_HEADER_BYTES,
  MigrationStreamError,
  parseLibvirtSaveHeader,
  stripLibvirtSaveHeader,
} from '../src/index.js';

const XML = "<domain type='qemu'><name>t</name></domain>";
const STREAM = new TextEncoder().encode('QEVM\0\0\0\x03rest of the stream');

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part.slice());
  return concat(...parts);
}

describe('libvirt save image header', () => {
  it('builds the layout libvirt 9.0 writes: magic, version 2, data_len, was_running, XML at 92', () => {
    const header = buildLibvirtSaveHeader({ xml: XML, padding: 100 });
    const view = new DataView(header.buffer);
    expect(new TextDecoder().decode(header.subarray(0, 16))).toBe('LibvirtQemudSave');
    expect(view.getUint32(16, true)).toBe(2);
    expect(view.getUint32(20, true)).toBe(XML.length + 1 + 100);
    expect(view.getUint32(24, true)).toBe(1);
    expect(view.getUint32(28, true)).toBe(0);
    expect(header.length).toBe(LIBVIRT_SAVE_HEADER_BYTES + XML.length + 1 + 100);
    expect(isLibvirtSaveImage(header)).toBe(true);
    expect(parseLibvirtSaveHeader(header)).toMatchObject({
      version: 2,
      wasRunning: true,
      compressed: 0,
      xml: XML,
      cookie: undefined,
      streamOffset: header.length,
    });
    expect(parseLibvirtSaveHeader(buildLibvirtSaveHeader({ xml: XML, wasRunning: false })).wasRunning).toBe(
      false,
    );
  });

  it('reads a cookie at cookie_offset (as virsh save writes it)', () => {
    const cookie = '<cookie><cpu/></cookie>';
    const data = new TextEncoder().encode(`${XML}\0${cookie}\0\0\0`);
    const header = buildLibvirtSaveHeader({ xml: 'x' });
    const full = new Uint8Array(LIBVIRT_SAVE_HEADER_BYTES + data.length);
    full.set(header.subarray(0, LIBVIRT_SAVE_HEADER_BYTES));
    full.set(data, LIBVIRT_SAVE_HEADER_BYTES);
    const view = new DataView(full.buffer);
    view.setUint32(20, data.length, true);
    view.setUint32(32, XML.length + 1, true);
    expect(parseLibvirtSaveHeader(full)).toMatchObject({ xml: XML, cookie });
  });

  it.each([1, 7, 91, 92, 93, 200, 4096])('strips the header in chunks of %i bytes', async (size) => {
    const image = concat(buildLibvirtSaveHeader({ xml: XML, padding: 300 }), STREAM);
    const seen: string[] = [];
    const out = await collect(stripLibvirtSaveHeader(chunked(image, size), (h) => seen.push(h.xml)));
    expect(out).toEqual(STREAM);
    expect(seen).toEqual([XML]);
  });

  it('passes a plain migration stream through unchanged', async () => {
    expect(await collect(stripLibvirtSaveHeader(chunked(STREAM, 3)))).toEqual(STREAM);
    const short = new TextEncoder().encode('QE');
    expect(await collect(stripLibvirtSaveHeader(chunked(short, 1)))).toEqual(short);
  });

  it('refuses truncated, compressed and unknown-version images', async () => {
    const header = buildLibvirtSaveHeader({ xml: XML });
    await expect(collect(stripLibvirtSaveHeader(chunked(header.subarray(0, 50), 10)))).rejects.toMatchObject({
      code: 'truncated',
    });
    const compressed = header.slice();
    new DataView(compressed.buffer).setUint32(28, 1, true);
    await expect(collect(stripLibvirtSaveHeader(chunked(compressed, 64)))).rejects.toBeInstanceOf(
      MigrationStreamError,
    );
    const v9 = header.slice();
    new DataView(v9.buffer).setUint32(16, 9, true);
    expect(() => parseLibvirtSaveHeader(v9)).toThrow(/version 9/);
  });
});
