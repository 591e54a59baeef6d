import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../common/src/store.ts';
import type { PendingEvent } from '../src/change-outcomes.ts';
import { CODE, type NodeHarness, startNodeHarness, startTestNode, until } from './fixtures.ts';

// What the hub refuses for good never blocks a node's outbox, the operator sees it, and the
// pharmacy gets the final answer by its transaction id. And what the node accepts, the hub takes:
// the node's limits are the hub's (openapi/hub.yaml PackEvent).

let h: NodeHarness;

beforeAll(async () => {
  h = await startNodeHarness({ name: 'dead-letters', seed: 100 });
}, 90_000);

afterAll(() => h?.close());

const pack = (serial: string) => ({ productCode: CODE, serial, batch: 'B1', expiry: '291200' });

describe('transaction ids', () => {
  it('take what the hub takes, 100 visible ASCII characters, and nothing the hub would refuse', async () => {
    const longest = `${'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'}${'x'.repeat(68)}`;
    expect(longest).toHaveLength(100);
    const res = await h.call('/v1/packs/supply', { txId: longest, ...pack(h.serials[0]!) });
    expect(res).toMatchObject({ status: 200, json: { txId: longest, outcome: 'accepted', code: 'CHANGED' } });
    expect(h.hub.store.packDecision(h.pharmacy.clientId, longest)).toMatchObject({ result: { accepted: true } });
    for (const txId of [`${longest}x`, 'till 3', 'till\u00003', 'tïll-3', '']) {
      const refused = await h.call('/v1/packs/supply', { txId, ...pack(h.serials[1]!) });
      expect(refused).toEqual({
        status: 400,
        json: {
          type: 'https://packtrust.dev/problems/bad-request',
          title: 'The request is malformed',
          status: 400,
          detail: 'Request body is invalid: body/txId must match pattern "^[!-~]{1,100}$"',
          code: 'BAD_REQUEST',
          errors: [{ path: '/txId', message: 'must match pattern "^[!-~]{1,100}$"' }],
        },
      });
    }
  });
});

describe('a change the hub refuses for good', () => {
  it('is set aside as a dead letter, shown to monitoring, answered by its transaction id, and blocks nothing behind it', async () => {
    // While the hub is down, a supply is kept and answered pending, also when asked by its txId.
    await h.hub.stop();
    const kept = await h.call('/v1/packs/supply', { txId: 'after-1', ...pack(h.serials[3]!) });
    expect(kept).toMatchObject({ status: 202, json: { outcome: 'pending' } });
    expect(await h.call('/v1/transactions/after-1')).toEqual(kept);
    await h.node.close();

    // Ahead of it in the outbox, a change the hub will refuse for good: kept by a node whose clock
    // ran two hours ahead, so its time lies outside its token's validity (HUB_EVENT_TIME_INVALID).
    const local = Store.open({ path: join(h.dir, 'de-1', 'local') });
    const token = await h.pharmacy.token();
    const at = Date.now() + 2 * 3600_000;
    const refused: PendingEvent = {
      txId: 'skewed-1',
      clientId: h.pharmacy.clientId,
      ...pack(h.serials[2]!),
      op: 'supply',
      at: Date.now() - 1000,
      token,
    };
    await local.transaction(() =>
      local
        .db<PendingEvent, string>('event-outbox')
        .putSync(`${String(refused.at).padStart(15, '0')}|${h.pharmacy.clientId}|skewed-1`, { ...refused, at }),
    );
    await local.close();

    await h.hub.start();
    h.node = await startTestNode(h.hub, 'DE', 'de-1', h.dir);
    await until('the outbox to be sent', () => h.node.stateChanges.pending() === 0);

    // The change behind it was decided; the refused one was not retried, and is the final answer.
    expect(h.hub.store.packs.get(CODE + h.serials[3])).toMatchObject({ s: 'SUPPLIED' });
    expect(h.hub.store.packs.get(CODE + h.serials[2])).toMatchObject({ s: 'ACTIVE' });
    expect(await h.call('/v1/transactions/after-1')).toMatchObject({
      status: 200,
      json: { txId: 'after-1', outcome: 'accepted', code: 'CHANGED' },
    });
    const answer = await h.call('/v1/transactions/skewed-1');
    expect(answer).toEqual({
      status: 200,
      json: {
        txId: 'skewed-1',
        operation: 'supply',
        ...pack(h.serials[2]!),
        outcome: 'refused',
        code: 'HUB_EVENT_TIME_INVALID',
        // The hub's detail, not its whole answer (no path, no evidence number).
        detail: expect.stringMatching(/^the hub refused the change: (?!.*\/v1\/packs\/events)(?!.*evidence).+/),
      },
    });
    // Asked again with the same request, the pharmacy gets the same answer.
    expect(await h.call('/v1/packs/supply', { txId: 'skewed-1', ...pack(h.serials[2]!) })).toEqual(answer);

    const health = (await (await request(`${h.node.url}/health`, { dispatcher: h.dispatcher })).body.json()) as Record<
      string,
      unknown
    >;
    expect(health).toMatchObject({ changesPending: 0, deadLetters: 1 });
    const metrics = await (await request(`${h.node.url}/metrics`, { dispatcher: h.dispatcher })).body.text();
    expect(metrics).toContain('packtrust_dead_letters{market="DE",node="de-1"} 1\n');
    expect(metrics).toContain(
      'packtrust_dead_letters_by_code{market="DE",node="de-1",kind="event",code="HUB_EVENT_TIME_INVALID"} 1\n',
    );
  }, 90_000);

  it('answers 404 for a transaction id the client never used, and for another client’s', async () => {
    expect(await h.call('/v1/transactions/never-used')).toEqual({
      status: 404,
      json: {
        type: 'https://packtrust.dev/problems/node-tx-unknown',
        title: 'No state change of this client has this transaction id',
        status: 404,
        detail: 'This client made no state change with transaction id never-used',
        code: 'NODE_TX_UNKNOWN',
      },
    });
    const other = await h.hub.pharmacy('DE', 'DE-APO-2');
    const res = await h.call('/v1/transactions/after-1', undefined, await other.token());
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ code: 'NODE_TX_UNKNOWN' });
  });
});
