import type { OverlayRecord } from '@cloudlet/overlay-format';
import { describe, expect, it } from 'vitest';
import { accessOrdered } from '../src/index.js';

const raw = (space: 'memory' | 'disk', index: number): OverlayRecord =>
  ({ space, index, encoding: { kind: 'raw', data: new Uint8Array(4) } }) as OverlayRecord;
const copy = (index: number, of: number): OverlayRecord =>
  ({ space: 'disk', index, encoding: { kind: 'self', space: 'disk', index: of } }) as OverlayRecord;
const order = (records: OverlayRecord[]) => records.map((r) => `${r.space[0]}${r.index}`);

describe('accessOrdered', () => {
  const records = [
    raw('memory', 5),
    raw('memory', 9),
    raw('disk', 1),
    raw('disk', 2),
    copy(3, 1),
    raw('disk', 7),
  ];

  it('puts the touched memory pages first in touch order, then the other pages, then the disk likewise', () => {
    expect(order(accessOrdered(records, { memory: [9, 4], disk: [7] }))).toEqual([
      'm9',
      'm5',
      'd7',
      'd1',
      'd2',
      'd3',
    ]);
  });

  it('keeps memory first, then the touched disk chunks in touch order, then the rest', () => {
    expect(order(accessOrdered(records, { memory: [], disk: [7, 2, 999] }))).toEqual([
      'm5',
      'm9',
      'd7',
      'd2',
      'd1',
      'd3',
    ]);
  });

  it('moves a copied chunk up before the record that copies it', () => {
    expect(order(accessOrdered(records, { memory: [], disk: [3] }))).toEqual([
      'm5',
      'm9',
      'd1',
      'd3',
      'd2',
      'd7',
    ]);
  });

  it('without a profile, keeps the order', () => {
    expect(order(accessOrdered(records, { memory: [], disk: [] }))).toEqual([
      'm5',
      'm9',
      'd1',
      'd2',
      'd3',
      'd7',
    ]);
  });
});
