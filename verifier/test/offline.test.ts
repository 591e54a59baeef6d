import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pharmacy } from '../../gateway/test/fixtures.ts';
import { CODE, type NodeHarness, startNodeHarness, until } from './fixtures.ts';

/**
 * Offline mode (Art. 29) from the replica alone, with the lifetimes shortened: tokens live 3 s
 * (600 s in the default configuration) and queued events are accepted 120 s after their token
 * expired (24 h by default). The hub stays down longer than a token lives, as a 15-minute outage
 * would with the defaults.
 */

const TTL = 3;
let h: NodeHarness;
const pharmacies: Record<string, Pharmacy> = {};

const pack = (serial: string) => ({ productCode: CODE, serial, batch: 'B1', expiry: '291200' });
const expiryOf = (token: string) => 1000 * JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp;

beforeAll(async () => {
  h = await startNodeHarness({ name: 'offline', seed: 1000, hub: { tokenTtlSeconds: TTL, offlineWindowSeconds: 120 } });
  pharmacies.A = await h.hub.pharmacy('DE', 'DE-APO-A');
  pharmacies.B = await h.hub.pharmacy('DE', 'DE-APO-B');
}, 90_000);

afterAll(() => h?.close());

/** A pharmacy's request with `bearer`: the answer's status and body. */
const call = (path: string, bearer: string, body: unknown) => h.call(path, body, bearer);

describe('the hub down longer than a token lives', () => {
  it('keeps verifying unseen tokens, never dispenses a pending pack twice, and delivers the queued supply once, in the right name', async () => {
    // Tokens the node has never seen, taken just before the outage.
    const a = await pharmacies.A!.token();
    const b = await pharmacies.B!.token();
    await h.hub.stop();

    expect((await call('/v1/packs/verify', b, pack(h.serials[0]!))).json).toMatchObject({ returnCode: 'ACTIVE' });
    const supply = await call('/v1/packs/supply', a, { txId: 'out-1', ...pack(h.serials[0]!) });
    expect(supply).toEqual({
      status: 202,
      json: {
        txId: 'out-1',
        operation: 'supply',
        ...pack(h.serials[0]!),
        outcome: 'pending',
        code: 'PENDING',
        detail: 'the hub is unreachable; the supply is stored and will be sent',
      },
    });
    // At this node the pack is pending, not active, and a second supply of it is refused.
    expect((await call('/v1/packs/verify', b, pack(h.serials[0]!))).json).toEqual({
      returnCode: 'PENDING',
      detail: "a supply of this pack at this node is waiting for the hub's decision",
      operation: 'verify',
      ...pack(h.serials[0]!),
      state: 'ACTIVE',
    });
    expect((await call('/v1/packs/supply', b, { txId: 'out-2', ...pack(h.serials[0]!) })).json).toMatchObject({
      outcome: 'refused',
      code: 'CHANGE_PENDING',
    });
    // The same request again is still pending, not refused.
    expect((await call('/v1/packs/supply', a, { txId: 'out-1', ...pack(h.serials[0]!) })).status).toBe(202);

    // The outage outlasts the tokens: new requests with them are refused, the queued one is kept.
    await until('the tokens to expire', () => Date.now() > expiryOf(a) + 200 && Date.now() > expiryOf(b) + 200);
    expect((await call('/v1/packs/verify', b, pack(h.serials[1]!))).json).toMatchObject({
      status: 401,
      code: 'NODE_TOKEN_INVALID',
      detail: 'the token has expired',
    });
    expect(h.node.stateChanges.pending()).toBe(1);

    await h.hub.start();
    await until('the queued supply to be delivered', () => h.node.stateChanges.pending() === 0);
    const { clientId } = pharmacies.A!;
    expect(h.hub.store.packs.get(CODE + h.serials[0])).toMatchObject({
      s: 'SUPPLIED',
      by: { clientId, location: 'DE-APO-A' },
    });
    expect(h.hub.store.packTx.get(`${clientId}|out-1`)).toMatchObject({ result: { accepted: true, code: 'CHANGED' } });
    const decisions = [...h.hub.store.feed('DE').entries()].filter(
      (e) => e.body.type === 'pack-state' && e.body.serial === h.serials[0],
    );
    expect(decisions).toHaveLength(1);

    // Once the hub decided, the node answers with the decision; a repeat gets the recorded answer.
    await h.node.replicator.waitFor(h.hub.store.feed('DE').last()!.seq, 30_000);
    const fresh = await pharmacies.A!.token();
    expect((await call('/v1/packs/verify', fresh, pack(h.serials[0]!))).json).toMatchObject({
      returnCode: 'DECOMMISSIONED',
      state: 'SUPPLIED',
    });
    expect((await call('/v1/packs/supply', fresh, { txId: 'out-1', ...pack(h.serials[0]!) })).json).toMatchObject({
      outcome: 'accepted',
      code: 'CHANGED',
      state: 'SUPPLIED',
    });
    expect(h.hub.store.feed('DE').last()!.seq).toBe(decisions[0]!.seq);

    // CHANGE_PENDING was not the final answer of pharmacy B's request: asked again, it is decided.
    const b2 = await pharmacies.B!.token();
    expect((await call('/v1/packs/supply', b2, { txId: 'out-2', ...pack(h.serials[0]!) })).json).toMatchObject({
      outcome: 'refused',
      code: 'ALREADY_DECOMMISSIONED',
      alert: { code: 'A7' },
    });
    // A transaction id answers its own request only, never another pack's.
    expect((await call('/v1/packs/supply', fresh, { txId: 'out-1', ...pack(h.serials[2]!) })).json).toEqual({
      txId: 'out-1',
      operation: 'supply',
      ...pack(h.serials[2]!),
      outcome: 'refused',
      code: 'TX_ID_REUSED',
      detail: 'transaction id out-1 was used by this client for another request',
    });
  }, 90_000);
});
