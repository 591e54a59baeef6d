import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gs1CheckDigit } from '../../common/src/gs1.ts';
import type { StoredAlert } from '../../gateway/src/hub-store.ts';
import type { Pharmacy } from '../../gateway/test/fixtures.ts';
import { CODE, type NodeHarness, startNodeHarness } from './fixtures.ts';

// A client's alerts are bounded (docs/domain.md §5, "Alert floods"): a bulk request of 10,000
// invented serials raised 10,000 alerts to the manufacturer. The pharmacy still gets each pack's
// answer; the owner gets a few alerts and one that counts the rest.

const WINDOW_MS = 1000;
let h: NodeHarness;

beforeAll(async () => {
  h = await startNodeHarness({ name: 'alert-floods', seed: 10, node: { alertWindowMs: WINDOW_MS } });
}, 90_000);

afterAll(() => h?.close());

async function verifyBulk(p: Pharmacy, packs: unknown[]) {
  const res = await h.call('/v1/packs/verify-bulk', { packs }, await p.token());
  expect(res.status).toBe(200);
  return (res.json as { results: { returnCode: string; alert?: { code: string; id: string } }[] }).results;
}

/** The alerts the hub keeps for `owner` raised by `clientId`, once the node has sent them all. */
async function keptAtHub(owner: string, clientId: string, expected: number): Promise<StoredAlert[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const kept = h.hub.alertsOf(owner).filter((a) => a.raisedBy.clientId === clientId);
    if ((kept.length >= expected && h.node.alerts.pending() === 0) || Date.now() > deadline) return kept;
    await sleep(50);
  }
}

const pack = (productCode: string, serial: string) => ({ productCode, serial, batch: 'B1', expiry: '291200' });

describe('a bulk request of 10,000 invented serials', () => {
  it('answers each pack with its alert, and raises 3 alerts and one that counts the other 9,997', async () => {
    const p = await h.hub.pharmacy('DE', 'DE-APO-FLOOD');
    const packs = Array.from({ length: 10_000 }, (_, i) => pack(CODE, `INVENTED${i}`));
    const results = await verifyBulk(p, packs);
    expect(results).toHaveLength(10_000);
    expect(results.every((r) => r.returnCode === 'SERIAL_UNKNOWN' && r.alert?.code === 'A3')).toBe(true);
    const ids = [...new Set(results.map((r) => r.alert!.id))];
    expect(ids).toHaveLength(4);
    expect(results.slice(3).every((r) => r.alert!.id === results[3]!.alert!.id)).toBe(true);

    const kept = await keptAtHub('ACME', p.clientId, 4);
    expect(kept.map((a) => a.id).sort()).toEqual([...ids].sort());
    const singles = kept.filter((a) => a.count === undefined);
    expect(singles.map((a) => a.pack.serial).sort()).toEqual(['INVENTED0', 'INVENTED1', 'INVENTED2']);
    const aggregated = kept.find((a) => a.count !== undefined)!;
    expect(aggregated).toMatchObject({
      id: results[3]!.alert!.id,
      code: 'A3',
      returnCode: 'SERIAL_UNKNOWN',
      pack: pack(CODE, 'INVENTED3'),
      count: 9_997,
      samples: Array.from({ length: 10 }, (_, i) => pack(CODE, `INVENTED${i + 3}`)),
      detail: `9997 A3 alerts of this client in 1 s, counted in one (docs/domain.md §5); the first: serial INVENTED3 is not registered for this product`,
      raisedBy: { clientId: p.clientId, location: 'DE-APO-FLOOD' },
      owner: 'ACME',
    });
  }, 60_000);

  it('counts per product owner once the client has used its 100 records of the window', async () => {
    const p = await h.hub.pharmacy('DE', 'DE-APO-MANY');
    // 150 product codes no one registered: each is a key of its own.
    const codes = Array.from({ length: 150 }, (_, i) => {
      const head = `0950600099${String(i).padStart(3, '0')}`;
      return `${head}${gs1CheckDigit(head)}`;
    });
    const results = await verifyBulk(
      p,
      codes.map((c) => pack(c, 'ANY1')),
    );
    expect(results.every((r) => r.returnCode === 'PRODUCT_UNKNOWN' && r.alert?.code === 'A3')).toBe(true);
    const kept = await keptAtHub('-', p.clientId, 101);
    expect(kept).toHaveLength(101);
    expect(kept.filter((a) => a.count === undefined).map((a) => a.pack.productCode)).toEqual(
      expect.arrayContaining(codes.slice(0, 100)),
    );
    expect(kept.find((a) => a.count !== undefined)).toMatchObject({
      count: 50,
      pack: pack(codes[100]!, 'ANY1'),
      samples: codes.slice(100, 110).map((c) => pack(c, 'ANY1')),
    });
  }, 60_000);
});
