// Test-only serialiser of synthetic migration streams. Deliberately independent of src/writer.ts
// (byte-by-byte, every knob explicit) so reader and writer are checked against a second opinion.

import { type RamPage, readMigrationStream, type StreamPrologue } from '../src/index.js';

export class ByteBuilder {
  private readonly out: number[] = [];

  get offset(): number {
    return this.out.length;
  }

  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }

  be32(v: number): this {
    return this.u8(v >>> 24)
      .u8(v >>> 16)
      .u8(v >>> 8)
      .u8(v);
  }

  be64(v: number | bigint): this {
    const big = BigInt(v);
    return this.be32(Number((big >> 32n) & 0xffffffffn)).be32(Number(big & 0xffffffffn));
  }

  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.out.push(bytes[i] as number);
    return this;
  }

  /** u8 length + ASCII. */
  str(s: string): this {
    return this.u8(s.length).raw(ascii(s));
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

export function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

export interface SyntheticBlock {
  name: string;
  length: number;
  mrAddr?: bigint;
}

export interface SyntheticRecord {
  block: string;
  offset: number;
  /** null = zero page; a number = zero record with that fill byte. */
  data: Uint8Array | null | number;
  /** Force the block name even if CONTINUE would do; `false` forces CONTINUE. */
  named?: boolean;
}

export interface SyntheticDevice {
  id: number;
  name: string;
  body: Uint8Array;
}

export interface SyntheticStreamSpec {
  machineType?: string;
  capabilities?: string[];
  uuid?: Uint8Array;
  targetPageBits?: number;
  footers?: boolean;
  ramSectionId?: number;
  blocks: SyntheticBlock[];
  /** Each entry is one RAM section's records; the last one is sent as END, the rest as PART. */
  sections: SyntheticRecord[][];
  devices?: SyntheticDevice[];
  /** JSON text for the vmdesc, or null for none. */
  vmdesc?: string | null;
}

export interface SyntheticStream {
  bytes: Uint8Array;
  /** Stream offsets of landmarks, for checking error offsets. */
  at: {
    config: number;
    ramStart: number;
    memSize: number;
    blockNames: number[];
    blockLengths: number[];
    tableEos: number;
    sections: number[];
    records: number[];
    tail: number;
    vmdesc: number | null;
  };
  deviceTail: Uint8Array;
  vmdesc: Uint8Array | null;
}

export const PAGE = 4096;

/** A deterministic page whose bytes identify (seed). */
export function patternPage(seed: number): Uint8Array {
  const page = new Uint8Array(PAGE);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < PAGE; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    page[i] = x >>> 24;
  }
  return page;
}

export function deviceTailBytes(devices: SyntheticDevice[], footers: boolean): Uint8Array {
  const b = new ByteBuilder();
  for (const d of devices) {
    b.u8(0x04).be32(d.id).str(d.name).be32(0).be32(1).raw(d.body);
    if (footers) b.u8(0x7e).be32(d.id);
  }
  return b.u8(0x00).bytes();
}

export const DEFAULT_DEVICES: SyntheticDevice[] = [
  { id: 3, name: 'timer', body: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]) },
  { id: 4, name: 'globalstate', body: Uint8Array.from([0, 0, 0, 7, ...ascii('paused')]) },
];

export function buildStream(spec: SyntheticStreamSpec): SyntheticStream {
  const footers = spec.footers ?? true;
  const sectionId = spec.ramSectionId ?? 2;
  const capabilities = spec.capabilities ?? [];
  const b = new ByteBuilder();
  b.raw(ascii('QEVM')).be32(3).u8(0x07);
  const config = b.offset;
  const machineType = spec.machineType ?? 'pc-i440fx-7.2';
  b.be32(machineType.length).raw(ascii(machineType));
  if (spec.targetPageBits !== undefined) {
    b.u8(0x05).str('configuration/target-page-bits').be32(1).be32(spec.targetPageBits);
  }
  if (capabilities.length > 0) {
    b.u8(0x05).str('configuration/capabilities').be32(1).be32(capabilities.length);
    for (const c of capabilities) b.str(c);
  }
  if (spec.uuid !== undefined) b.u8(0x05).str('configuration/uuid').be32(1).raw(spec.uuid);

  const ramStart = b.offset;
  b.u8(0x01).be32(sectionId).str('ram').be32(0).be32(4);
  const memSize = b.offset;
  b.be64(spec.blocks.reduce((s, x) => s + x.length, 0) + 0x04);
  const blockNames: number[] = [];
  const blockLengths: number[] = [];
  for (const blk of spec.blocks) {
    blockNames.push(b.offset);
    b.str(blk.name);
    blockLengths.push(b.offset);
    b.be64(blk.length);
    if (blk.mrAddr !== undefined) b.be64(blk.mrAddr);
  }
  const tableEos = b.offset;
  b.be64(0x10);
  if (footers) b.u8(0x7e).be32(sectionId);

  const sections: number[] = [];
  const records: number[] = [];
  let previous: string | null = null;
  spec.sections.forEach((recs, i) => {
    sections.push(b.offset);
    b.u8(i === spec.sections.length - 1 ? 0x03 : 0x02).be32(sectionId);
    for (const r of recs) {
      records.push(b.offset);
      const named = r.named ?? r.block !== previous;
      const kind = r.data === null || typeof r.data === 'number' ? 0x02 : 0x08;
      b.be64(r.offset + kind + (named ? 0 : 0x20));
      if (named) b.str(r.block);
      previous = r.block;
      if (r.data === null) b.u8(0);
      else if (typeof r.data === 'number') b.u8(r.data);
      else b.raw(r.data);
    }
    b.be64(0x10);
    if (footers) b.u8(0x7e).be32(sectionId);
  });

  const tail = b.offset;
  const deviceTail = deviceTailBytes(spec.devices ?? DEFAULT_DEVICES, footers);
  b.raw(deviceTail);
  let vmdesc: Uint8Array | null = null;
  let vmdescAt: number | null = null;
  const json = spec.vmdesc === undefined ? '{"page_size": 4096, "devices": []}' : spec.vmdesc;
  if (json !== null) {
    vmdesc = ascii(json);
    vmdescAt = b.offset;
    b.u8(0x06).be32(vmdesc.length).raw(vmdesc);
  }
  return {
    bytes: b.bytes(),
    at: {
      config,
      ramStart,
      memSize,
      blockNames,
      blockLengths,
      tableEos,
      sections,
      records,
      tail,
      vmdesc: vmdescAt,
    },
    deviceTail,
    vmdesc,
  };
}

/** Feeds bytes as an async iterable, cut at the given chunk sizes (cycled). */
export async function* chunked(
  bytes: Uint8Array,
  sizes: number[] = [bytes.length],
): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length] ?? 1);
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export interface ParsedStream {
  prologue: StreamPrologue;
  pages: RamPage[];
  deviceTail: Uint8Array;
  vmdesc: Uint8Array | null;
  kinds: string[];
}

/** Reads a whole stream into memory (tests only). */
export async function readAll(source: AsyncIterable<Uint8Array>): Promise<ParsedStream> {
  let prologue: StreamPrologue | undefined;
  const pages: RamPage[] = [];
  let deviceTail: Uint8Array | undefined;
  let vmdesc: Uint8Array | null = null;
  const kinds: string[] = [];
  for await (const item of readMigrationStream(source)) {
    if (kinds.at(-1) !== item.kind) kinds.push(item.kind);
    if (item.kind === 'prologue') prologue = item.prologue;
    else if (item.kind === 'page') pages.push(item.page);
    else if (item.kind === 'deviceTail') deviceTail = item.bytes;
    else vmdesc = item.json;
  }
  if (prologue === undefined || deviceTail === undefined) throw new Error('incomplete parse');
  return { prologue, pages, deviceTail, vmdesc, kinds };
}

const base64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64');

/** A plain-data form of a parse that vitest compares quickly (its typed-array equality is slow). */
export function digest(parsed: ParsedStream) {
  return {
    prologue: { ...parsed.prologue, configBytes: base64(parsed.prologue.configBytes) },
    pages: parsed.pages.map((p) => `${p.block}@${p.offset}:${p.data === null ? 'zero' : base64(p.data)}`),
    deviceTail: base64(parsed.deviceTail),
    vmdesc: parsed.vmdesc === null ? null : base64(parsed.vmdesc),
  };
}
