import { describe, expect, it } from 'vitest';
import type { ReplicaBatch, ReplicaPack, ReplicaProduct } from '../src/replica.ts';
import { memoised, type ReplicaLookup, verifyPack } from '../src/verification.ts';

const product: ReplicaProduct = {
  productCode: '09506000134352',
  name: 'X',
  markets: ['DE'],
  status: 'ACTIVE',
  owner: 'ACME',
};
const batches = new Map<string, ReplicaBatch>([
  ['B1', { expiry: '291200', expiryDate: '2029-12-31', status: 'ACTIVE' }],
  ['OLD', { expiry: '240100', expiryDate: '2024-01-31', status: 'ACTIVE' }],
  ['RC', { expiry: '291200', expiryDate: '2029-12-31', status: 'RECALLED', reason: 'contamination' }],
]);
const packs = new Map<string, ReplicaPack>([
  ['S1', { b: 'B1', s: 'ACTIVE' }],
  ['S2', { b: 'B1', s: 'SUPPLIED' }],
  ['S3', { b: 'OLD', s: 'ACTIVE' }],
  ['S4', { b: 'RC', s: 'ACTIVE' }],
]);
const replica = (p: ReplicaProduct = product): ReplicaLookup => ({
  product: (code) => (code === p.productCode ? p : undefined),
  batch: (_code, b) => batches.get(b),
  pack: (_code, s) => packs.get(s),
});
const q = (serial: string, batch = 'B1', expiry = '291200') => ({
  productCode: product.productCode,
  serial,
  batch,
  expiry,
});
const today = '2026-11-22';

describe('verifyPack', () => {
  it('answers an active pack without an alert', () => {
    expect(verifyPack(q('S1'), replica(), today)).toMatchObject({ returnCode: 'ACTIVE', state: 'ACTIVE' });
    expect(verifyPack(q('S1'), replica(), today).alert).toBeUndefined();
  });

  it('raises A3 for an unknown serial or product, A2 for an unknown batch', () => {
    expect(verifyPack(q('NOPE'), replica(), today)).toMatchObject({ returnCode: 'SERIAL_UNKNOWN', alert: 'A3' });
    expect(verifyPack(q('NOPE', 'NOBATCH'), replica(), today)).toMatchObject({
      returnCode: 'BATCH_UNKNOWN',
      alert: 'A2',
    });
    expect(verifyPack({ ...q('S1'), productCode: '04012345000009' }, replica(), today)).toMatchObject({
      returnCode: 'PRODUCT_UNKNOWN',
      alert: 'A3',
    });
  });

  it('raises A68 for a batch mismatch and A52 for an expiry mismatch', () => {
    expect(verifyPack(q('S1', 'OLD'), replica(), today)).toMatchObject({ returnCode: 'BATCH_MISMATCH', alert: 'A68' });
    expect(verifyPack(q('S1', 'B1', '291100'), replica(), today)).toMatchObject({
      returnCode: 'EXPIRY_MISMATCH',
      alert: 'A52',
    });
  });

  it('reads an expiry with day 00 and one with the last day of that month as the same date (docs/domain.md §1)', () => {
    // The batch B1 was registered as 291200; a pack printed with 291231 names the same date.
    expect(verifyPack(q('S1', 'B1', '291231'), replica(), today)).toEqual({
      returnCode: 'ACTIVE',
      state: 'ACTIVE',
      detail: 'the pack is active',
    });
    // And the other way round: a batch registered with a full date, scanned as YYMM00.
    const fullDate = new Map<string, ReplicaBatch>([
      ['B1', { expiry: '290228', expiryDate: '2029-02-28', status: 'ACTIVE' }],
    ]);
    const lookup: ReplicaLookup = { ...replica(), batch: (_code, b) => fullDate.get(b) };
    expect(verifyPack(q('S1', 'B1', '290200'), lookup, today)).toMatchObject({ returnCode: 'ACTIVE' });
    // The day before the month's end is another date.
    expect(verifyPack(q('S1', 'B1', '291230'), replica(), today)).toEqual({
      returnCode: 'EXPIRY_MISMATCH',
      state: 'ACTIVE',
      alert: 'A52',
      detail: 'the batch expiry is not 291230',
    });
  });

  it('answers expired, recalled and withdrawn packs with their reason and no alert, product first', () => {
    expect(verifyPack(q('S3', 'OLD', '240100'), replica(), today)).toEqual(
      expect.objectContaining({ returnCode: 'INACTIVE', inactiveReason: 'EXPIRED' }),
    );
    const recalled = verifyPack(q('S4', 'RC'), replica(), today);
    expect(recalled).toMatchObject({
      returnCode: 'INACTIVE',
      inactiveReason: 'RECALLED',
      detail: 'the batch is recalled: contamination',
    });
    expect(recalled.alert).toBeUndefined();
    expect(verifyPack(q('S4', 'RC'), replica({ ...product, status: 'WITHDRAWN' }), today)).toMatchObject({
      inactiveReason: 'WITHDRAWN',
    });
  });

  it('answers a decommissioned pack with its state', () => {
    expect(verifyPack(q('S2'), replica(), today)).toMatchObject({ returnCode: 'DECOMMISSIONED', state: 'SUPPLIED' });
  });
});

describe('memoised lookup (bulk requests)', () => {
  it('reads each product and batch once, every pack each time, and answers the same', () => {
    const reads = { product: 0, batch: 0, pack: 0 };
    const base = replica();
    const counting: ReplicaLookup = {
      product(c) {
        reads.product++;
        return base.product(c);
      },
      batch(c, b) {
        reads.batch++;
        return base.batch(c, b);
      },
      pack(c, s) {
        reads.pack++;
        return base.pack(c, s);
      },
    };
    const view = memoised(counting);
    const queries = [q('S1'), q('S2'), q('S3', 'OLD', '240100'), q('S4', 'RC'), q('NOPE'), q('S1')];
    const answers = queries.map((x) => verifyPack(x, view, '2026-11-22'));
    expect(answers).toEqual(queries.map((x) => verifyPack(x, base, '2026-11-22')));
    expect(reads).toEqual({ product: 1, batch: 3, pack: queries.length });
  });
});
