import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  decodePackRows,
  decodeRecords,
  decodeSnapshot,
  encodeLine,
  encodePackRow,
  type FeedRecordEntry,
  type PackRow,
  type SnapshotLine,
} from '../src/feed-format.ts';

const rowsOf = (text: string): [string, PackRow][] => {
  const out: [string, PackRow][] = [];
  decodePackRows(text, (serial, pack) => out.push([serial, pack]));
  return out;
};

const entry = (seq: number): FeedRecordEntry => ({
  seq,
  prev: '0'.repeat(64),
  hash: 'a'.repeat(64),
  body: { type: 'client-disabled', clientId: `c${seq}`, at: '2026-01-01T00:00:00.000Z' },
});

describe('encodePackRow', () => {
  it('writes an active pack as serial, batch and state', () => {
    expect(encodePackRow('S1', { b: 'B1', s: 'ACTIVE' })).toBe('S1\tB1\tACTIVE');
  });

  it('adds the client, location and time of a decommissioned pack', () => {
    const pack = { b: 'B1', s: 'SUPPLIED', by: { clientId: 'ph-1', location: 'Berlin' }, at: 1767225600000 };
    expect(encodePackRow('S1', pack)).toBe('S1\tB1\tSUPPLIED\tph-1\tBerlin\t1767225600000');
  });

  it('leaves the time empty when the pack has a client but no time', () => {
    expect(encodePackRow('S1', { b: 'B1', s: 'SUPPLIED', by: { clientId: 'ph-1', location: 'Berlin' } })).toBe(
      'S1\tB1\tSUPPLIED\tph-1\tBerlin\t',
    );
  });
});

describe('decodePackRows', () => {
  it('reads back what encodePackRow wrote, in order', () => {
    const packs: [string, PackRow][] = [
      ['S1', { b: 'B1', s: 'ACTIVE' }],
      ['S2', { b: 'B1', s: 'SUPPLIED', by: { clientId: 'ph-1', location: 'Berlin' }, at: 1767225600000 }],
      ['S3', { b: 'B2', s: 'ACTIVE' }],
    ];
    expect(rowsOf(packs.map(([serial, pack]) => encodePackRow(serial, pack)).join('\n'))).toEqual(packs);
  });

  it('reads a row with a client but no time as time 0, as nodes always have', () => {
    expect(rowsOf('S1\tB1\tSUPPLIED\tph-1\tBerlin\t')).toEqual([
      ['S1', { b: 'B1', s: 'SUPPLIED', by: { clientId: 'ph-1', location: 'Berlin' }, at: 0 }],
    ]);
  });
});

describe('encodeLine', () => {
  it('writes one JSON value and LF', () => {
    const line: SnapshotLine = { type: 'end', products: 1, batches: 2, packs: 3 };
    expect(encodeLine(line)).toBe('{"type":"end","products":1,"batches":2,"packs":3}\n');
  });
});

describe('decodeRecords', () => {
  it('reads every line of a page, in order', () => {
    const page = [entry(1), entry(2)].map(encodeLine).join('');
    expect(decodeRecords(page)).toEqual([entry(1), entry(2)]);
  });

  it('reads an empty page (no record came within the wait) as no records', () => {
    expect(decodeRecords('')).toEqual([]);
  });
});

describe('decodeSnapshot', () => {
  it('yields each line as it arrives, across chunk boundaries, skipping blank lines', async () => {
    const lines: SnapshotLine[] = [
      { type: 'snapshot', market: 'DE', seq: 7, hash: 'b'.repeat(64) },
      { type: 'packs', productCode: '09506000134352', count: 2, packs: 'S1\tB1\tACTIVE\nS2\tB1\tACTIVE' },
      { type: 'end', products: 0, batches: 0, packs: 2 },
    ];
    const text = `${lines.map(encodeLine).join('')}\n`;
    const chunks = [text.slice(0, 10), text.slice(10, 50), text.slice(50)];
    const read: SnapshotLine[] = [];
    for await (const line of decodeSnapshot(Readable.from(chunks))) read.push(line);
    expect(read).toEqual(lines);
  });
});
