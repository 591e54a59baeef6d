import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HubStore, type StoredAlert } from '../src/hub-store.ts';
import { SerialStatistics } from '../src/randomisation.ts';
import { randomSerials } from './fixtures.ts';

/**
 * What the hub store builds once when it opens a store written by an earlier version: indexes and
 * summaries that later versions keep as they write. Real LMDB files, closed and opened again.
 */
describe('HubStore on a store from an earlier version', () => {
  let dir: string;
  let store: HubStore;
  const reopen = async () => {
    await store.close();
    store = new HubStore(join(dir, 'hub'), ['DE', 'FR']);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'packtrust-hub-store-'));
    store = new HubStore(join(dir, 'hub'), ['DE', 'FR']);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("gets each product's serial statistics from its packs, as if every upload had kept them", async () => {
    const [a, b] = ['09506000134352', '09506000134369'];
    const serials = new Map([
      [a, [...randomSerials(150_000), '000123', '999999']],
      [b, randomSerials(40)],
    ]);
    // Packs registered as an earlier version did: no statistics kept.
    await store.transaction(() => {
      store.registerPacks(a, 'B1', serials.get(a)!.slice(0, 100_000));
      store.registerPacks(a, 'B2', serials.get(a)!.slice(100_000));
      store.registerPacks(b, 'B1', serials.get(b)!);
    });
    expect(store.serialStatistics(a).packs).toBe(0);
    await reopen();
    for (const [code, list] of serials) {
      // Keys come back sorted, so the serials are merged in another order than uploaded: the same statistics.
      expect(store.serialStatistics(code).toJSON()).toEqual(SerialStatistics.of(list).toJSON());
    }
    expect(store.serialStatistics('09506000134376')).toBe(SerialStatistics.EMPTY);
  });

  it("indexes the alerts it holds by market, for the market's verification organisation", async () => {
    const alert = (id: string, market: string, raisedAt: string): StoredAlert => ({
      id,
      code: 'A3',
      returnCode: 'NMVS_NC_PC_02',
      detail: 'serial is not registered for this product',
      market,
      nodeId: `node-${market}`,
      pack: { productCode: '09506000134352', serial: `S-${id}`, batch: 'B1', expiry: '291200' },
      raisedBy: { clientId: 'pharmacy-1', org: 'APO', location: 'Berlin', role: 'pharmacy' },
      raisedAt,
      receivedAt: raisedAt,
      owner: 'ACME',
    });
    await store.transaction(() => {
      store.addAlert(alert('1', 'DE', '2026-11-01T10:00:00.000Z'));
      store.addAlert(alert('2', 'FR', '2026-11-02T10:00:00.000Z'));
      store.addAlert(alert('3', 'DE', '2026-11-03T10:00:00.000Z'));
    });
    // As an earlier version left it: alerts, no market index.
    const index = store.store.db<string, string>('alerts-by-market', { encoding: 'string' });
    await store.store.transaction(() => {
      for (const key of index.getKeys()) index.removeSync(key);
    });
    expect(store.marketAlertsOf('DE', { limit: 10 }).alerts).toEqual([]);
    await reopen();
    expect(store.marketAlertsOf('DE', { limit: 10 }).alerts.map((a) => a.id)).toEqual(['3', '1']);
    expect(store.marketAlertsOf('FR', { limit: 10 }).alerts.map((a) => a.id)).toEqual(['2']);
  });
});
