import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadClient } from '../../clients/upload-client.ts';
import { productJson, randomSerials, startTestHub, type TestHub } from '../../gateway/test/fixtures.ts';
import type { RunningVerifierNode } from '../src/service.ts';
import { startTestNode } from './fixtures.ts';

// A product whose owner adds or removes a market (docs/domain.md §8): the nodes of an added market
// get every batch and pack with its current state; those of a removed one drop the product.

const dir = mkdtempSync(join(tmpdir(), 'packtrust-market-changes-'));
const CODE = '09506000134352';
let hub: TestHub;
let up: UploadClient;
let de: RunningVerifierNode;
let fr: RunningVerifierNode;
let dispatcher: Agent;
let b1: string[];
let b2: string[];
const tokens: Record<string, string> = {};

async function call(n: RunningVerifierNode, path: string, bearer: string, body: unknown) {
  const res = await request(`${n.url}${path}`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}
const pack = (serial: string, batch = 'B1') => ({ productCode: CODE, serial, batch, expiry: '291200' });
let tx = 0;
const change = (n: RunningVerifierNode, op: string, who: string, serial: string, batch = 'B1') =>
  call(n, `/v1/packs/${op}`, tokens[who]!, { txId: `tx-${++tx}`, ...pack(serial, batch) });
const verify = (n: RunningVerifierNode, who: string, serial: string, batch = 'B1') =>
  call(n, '/v1/packs/verify', tokens[who]!, pack(serial, batch));
const marketOf = new Map<RunningVerifierNode, string>();
const node = async (market: string, nodeId: string) => {
  const n = await startTestNode(hub, market, nodeId, dir);
  marketOf.set(n, market);
  return n;
};
const caughtUp = async (...nodes: RunningVerifierNode[]) => {
  for (const n of nodes) await n.replicator.waitFor(hub.store.feed(marketOf.get(n)!).last()?.seq ?? 0);
};
const register = async (markets: string[]) => {
  const res = await up.write('POST', '/v1/products', JSON.stringify(productJson(CODE, markets)));
  expect(res.status).toBe(200);
};

beforeAll(async () => {
  hub = await startTestHub();
  await hub.registerPrefix('ACME', '9506000');
  up = hub.client(await hub.credential('manufacturer', 'ACME'));
  b1 = await hub.seedProduct(CODE, ['DE'], 25_000);
  b2 = randomSerials(10);
  const res = await up.write('POST', `/v1/products/${CODE}/batches/B2/packs?expiry=291200`, b2.join('\n'), {
    contentType: 'text/plain',
  });
  expect(res.status).toBe(201);
  de = await node('DE', 'de-1');
  fr = await node('FR', 'fr-1');
  dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
  tokens.de = await (await hub.pharmacy('DE', 'DE-APO-1')).token();
  tokens.fr = await (await hub.pharmacy('FR', 'FR-PHA-1')).token();
  await caughtUp(de, fr);
  // Decommissioned at DE before FR is added.
  expect((await change(de, 'supply', 'de', b1[0]!)).json).toMatchObject({ outcome: 'accepted', state: 'SUPPLIED' });
  expect((await change(de, 'destroy', 'de', b2[0]!, 'B2')).json).toMatchObject({
    outcome: 'accepted',
    state: 'DESTROYED',
  });
}, 120_000);

afterAll(async () => {
  await dispatcher?.close();
  await de?.close();
  await fr?.close();
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a market added to a product', () => {
  it('gets every batch and pack with its current state: a genuine pack is ACTIVE, a supplied one supplied', async () => {
    expect((await verify(fr, 'fr', b1[1]!)).json).toMatchObject({
      returnCode: 'PRODUCT_UNKNOWN',
      alert: { code: 'A3' },
    });
    await register(['DE', 'FR']);
    await caughtUp(de, fr);
    const genuine = await verify(fr, 'fr', b1[1]!);
    expect(genuine.status).toBe(200);
    expect(genuine.json).toMatchObject({ returnCode: 'ACTIVE', state: 'ACTIVE' });
    expect(genuine.json.alert).toBeUndefined();
    // The last page of B1 (25,000 packs: three records of at most 10,000) and the other batch.
    expect((await verify(fr, 'fr', b1.at(-1)!)).json).toMatchObject({ returnCode: 'ACTIVE' });
    expect((await verify(fr, 'fr', b2[1]!, 'B2')).json).toMatchObject({ returnCode: 'ACTIVE' });
    expect((await verify(fr, 'fr', b1[0]!)).json).toMatchObject({ returnCode: 'DECOMMISSIONED', state: 'SUPPLIED' });
    expect((await verify(fr, 'fr', b2[0]!, 'B2')).json).toMatchObject({
      returnCode: 'DECOMMISSIONED',
      state: 'DESTROYED',
    });
    // Who decommissioned it travels too: what an undo is judged against.
    expect(fr.replica.pack(CODE, b1[0]!)).toEqual(hub.store.pack(CODE, b1[0]!));
    expect(fr.replica.packCount()).toBe(b1.length + b2.length);
  });

  it('sends no pack more than once to the markets the product already had', async () => {
    const kinds = [...hub.store.feed('DE').entries(1)].map((e) => e.body.type);
    expect(kinds.filter((k) => k === 'batch')).toHaveLength(2);
  });

  it('gives a node that bootstraps later the same replica', async () => {
    const fresh = await node('FR', 'fr-2');
    try {
      await caughtUp(fresh);
      expect(fresh.replica.pack(CODE, b1[0]!)).toEqual(fr.replica.pack(CODE, b1[0]!));
      expect(fresh.replica.packCount()).toBe(fr.replica.packCount());
    } finally {
      await fresh.close();
    }
  });

  it('takes state changes there, which reach the other markets', async () => {
    expect((await change(fr, 'supply', 'fr', b1[2]!)).json).toMatchObject({ outcome: 'accepted', state: 'SUPPLIED' });
    await caughtUp(de, fr);
    expect((await verify(de, 'de', b1[2]!)).json).toMatchObject({ returnCode: 'DECOMMISSIONED', state: 'SUPPLIED' });
  });
});

describe('a market removed from a product', () => {
  it("withdraws the product from the market's nodes: its packs answer PRODUCT_UNKNOWN, and no more changes go there", async () => {
    // A change kept offline at DE that reaches the hub only after the removal.
    await hub.gateway.close();
    const offline = await change(de, 'supply', 'de', b1[5]!);
    expect(offline).toMatchObject({ status: 202, json: { outcome: 'pending' } });
    de.stateChanges.stop();
    await hub.restart();
    await register(['FR']);
    await caughtUp(de, fr);
    await de.stateChanges.flush();
    de.stateChanges.start();
    expect(de.stateChanges.pending()).toBe(0);
    expect(de.stateChanges.deadLetters()).toBe(1);
    const answer = await request(`${de.url}/v1/transactions/${offline.json.txId}`, {
      dispatcher,
      headers: { authorization: `Bearer ${tokens.de}` },
    });
    expect(answer.statusCode).toBe(200);
    expect(await answer.body.json()).toMatchObject({ outcome: 'refused', code: 'HUB_WRONG_MARKET' });
    expect(hub.store.pack(CODE, b1[5]!)).toEqual({ b: 'B1', s: 'ACTIVE' });

    expect(hub.store.feed('DE').last()!.body).toEqual({
      type: 'product-removed',
      productCode: CODE,
      evidenceSeq: expect.any(Number),
    });
    expect((await verify(de, 'de', b1[3]!)).json).toMatchObject({
      returnCode: 'PRODUCT_UNKNOWN',
      alert: { code: 'A3' },
    });
    expect(de.replica.product(CODE)).toBeUndefined();
    expect(de.replica.packCount()).toBe(0);
    expect((await verify(fr, 'fr', b1[3]!)).json).toMatchObject({ returnCode: 'ACTIVE' });

    const deSeq = hub.store.feed('DE').last()!.seq;
    expect((await change(fr, 'supply', 'fr', b1[3]!)).json).toMatchObject({ outcome: 'accepted' });
    expect(hub.store.feed('DE').last()!.seq).toBe(deSeq);
  });

  it('and a market added again gets the state as it is now', async () => {
    await register(['FR', 'DE']);
    await caughtUp(de, fr);
    expect((await verify(de, 'de', b1[3]!)).json).toMatchObject({ returnCode: 'DECOMMISSIONED', state: 'SUPPLIED' });
    expect((await verify(de, 'de', b1[4]!)).json).toMatchObject({ returnCode: 'ACTIVE' });
  });
});
