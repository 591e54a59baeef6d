import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadClient } from '../../clients/upload-client.ts';
import { decodePackRows, type FeedRecord, type PackRow } from '../../common/src/feed-format.ts';
import { FMD_MARKETS } from '../../common/src/markets.ts';
import { productJson, randomSerials, startTestHub, type TestHub } from './fixtures.ts';

// POST /v1/products that changes a product's markets (docs/domain.md §8): what each market's feed
// gets, in the update's one transaction, and the bound on what an update may copy.

let hub: TestHub;
let up: UploadClient;

beforeAll(async () => {
  hub = await startTestHub();
  await hub.registerPrefix('ACME', '9506000');
  up = hub.client(await hub.credential('manufacturer', 'ACME'));
}, 60_000);
afterAll(() => hub?.close());

const register = (code: string, markets: string[]) =>
  up.write('POST', '/v1/products', JSON.stringify(productJson(code, markets)));
const upload = (code: string, batch: string, serials: string[]) =>
  up.write('POST', `/v1/products/${code}/batches/${batch}/packs?expiry=291200`, serials.join('\n'), {
    contentType: 'text/plain',
  });
/** The records appended to `market`'s feed from now on. */
const recorder = (market: string) => {
  const from = (hub.store.feed(market).last()?.seq ?? 0) + 1;
  return (): FeedRecord[] => [...hub.store.feed(market).entries(from)].map((e) => e.body);
};

describe('POST /v1/products adding a market', () => {
  const code = '09506000134352';
  let b1: string[];
  let b2: string[];

  beforeAll(async () => {
    expect((await register(code, ['DE'])).status).toBe(201);
    b1 = randomSerials(12_345);
    b2 = randomSerials(3);
    expect((await upload(code, 'B1', b1)).status).toBe(201);
    expect((await upload(code, 'B2', b2)).status).toBe(201);
    // Decommissioned before the market is added, as a pack event would (pack-events.ts).
    await hub.store.transaction(() =>
      hub.store.putPack(code, b1[7]!, { b: 'B1', s: 'SUPPLIED', by: { clientId: 'c-1', location: 'DE-APO-1' }, at: 1 }),
    );
  });

  it("gives the new market's feed the batches, every pack as it is in pages of 10,000, then the product, all in one write", async () => {
    const de = recorder('DE');
    const fr = recorder('FR');
    const res = await register(code, ['DE', 'FR']);
    expect(res.status).toBe(200);
    const product = hub.store.product(code)!;
    expect(product.markets).toEqual(['DE', 'FR']);
    const evidenceSeq = hub.store.evidence.last()!.seq;

    expect(de()).toEqual([{ type: 'product', product, evidenceSeq }]);
    const records = fr();
    expect(records.map((r) => r.type)).toEqual(['batch', 'batch', 'pack-rows', 'pack-rows', 'product']);
    expect(records.slice(0, 2)).toEqual([
      { type: 'batch', batch: hub.store.batch(code, 'B1'), evidenceSeq },
      { type: 'batch', batch: hub.store.batch(code, 'B2'), evidenceSeq },
    ]);
    expect(records[4]).toEqual({ type: 'product', product, evidenceSeq });
    const pages = records.filter((r) => r.type === 'pack-rows');
    expect(pages.map((p) => [p.productCode, p.count, p.evidenceSeq])).toEqual([
      [code, 10_000, evidenceSeq],
      [code, 2_348, evidenceSeq],
    ]);
    const sent = new Map<string, PackRow>();
    for (const page of pages) decodePackRows(page.rows, (serial, pack) => sent.set(serial, pack));
    expect(sent.size).toBe(b1.length + b2.length);
    for (const serial of [...b1, ...b2]) expect(sent.get(serial)).toEqual(hub.store.pack(code, serial));
    expect(sent.get(b1[7]!)).toEqual({ b: 'B1', s: 'SUPPLIED', by: { clientId: 'c-1', location: 'DE-APO-1' }, at: 1 });
  });

  it('sends nothing but the product record when the markets stay the same', async () => {
    const fr = recorder('FR');
    expect((await register(code, ['FR', 'DE'])).status).toBe(200);
    expect(fr().map((r) => r.type)).toEqual(['product']);
  });
});

describe('POST /v1/products removing a market', () => {
  const code = '09506000134369';

  it('gives the market left out product-removed, and none of its later changes', async () => {
    expect((await register(code, ['DE', 'FR'])).status).toBe(201);
    const serials = randomSerials(5);
    expect((await upload(code, 'B1', serials)).status).toBe(201);
    const de = recorder('DE');
    const fr = recorder('FR');
    expect((await register(code, ['FR'])).status).toBe(200);
    const evidenceSeq = hub.store.evidence.last()!.seq;
    expect(de()).toEqual([{ type: 'product-removed', productCode: code, evidenceSeq }]);
    expect(fr()).toEqual([{ type: 'product', product: hub.store.product(code), evidenceSeq }]);

    const recall = await up.write('POST', `/v1/products/${code}/batches/B1/recall`, JSON.stringify({ reason: 'x' }));
    expect(recall.status).toBe(200);
    expect(de()).toHaveLength(1);
    expect(fr().map((r) => r.type)).toEqual(['product', 'batch']);
  });
});

describe('POST /v1/products adding markets to a product with many packs', () => {
  const code = '09506000134376';

  it('is refused with 422 HUB_MARKET_ADDITION_TOO_LARGE past 5,000,000 packs copied, and writes nothing', async () => {
    expect((await register(code, ['DE'])).status).toBe(201);
    expect((await upload(code, 'B1', randomSerials(175_000))).status).toBe(201);
    const others = FMD_MARKETS.filter((m) => m !== 'DE');
    expect(others).toHaveLength(29);
    const evidence = hub.store.evidence.last()!.seq;
    const fr = recorder('FR');
    const before = hub.store.product(code);

    const res = await register(code, ['DE', ...others]);
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json()).toEqual({
      type: 'https://packtrust.dev/problems/hub-market-addition-too-large',
      title: 'Adding these markets would copy too many packs in one write; add one market at a time',
      status: 422,
      detail: `Adding ${others.join(', ')} would copy 5075000 packs (29 market(s) × the product's packs); one write copies at most 5000000`,
      code: 'HUB_MARKET_ADDITION_TOO_LARGE',
    });
    expect(hub.store.evidence.last()!.seq).toBe(evidence);
    expect(hub.store.product(code)).toEqual(before);
    expect(fr()).toEqual([]);

    // One market at a time is within the bound.
    expect((await register(code, ['DE', 'FR'])).status).toBe(200);
    expect(fr().filter((r) => r.type === 'pack-rows')).toHaveLength(18);
  }, 60_000);
});
