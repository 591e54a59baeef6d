import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../common/src/store.ts';
import { type Pharmacy, startTestHub, type TestHub } from '../../gateway/test/fixtures.ts';
import type { PendingEvent } from '../src/change-outcomes.ts';
import type { RunningVerifierNode } from '../src/service.ts';
import { startTestNode } from './fixtures.ts';

// What the hub refuses for good never blocks a node's outbox, the operator sees it, and the
// pharmacy gets the final answer by its transaction id. And what the node accepts, the hub takes:
// the node's limits are the hub's (openapi/hub.yaml PackEvent).

const dir = mkdtempSync(join(tmpdir(), 'packtrust-dead-letters-'));
const CODE = '09506000134352';
let hub: TestHub;
let node: RunningVerifierNode;
let serials: string[];
let dispatcher: Agent;
let pharmacy: Pharmacy;

beforeAll(async () => {
  hub = await startTestHub();
  serials = await hub.seedProduct(CODE, ['DE'], 100);
  node = await startTestNode(hub, 'DE', 'de-1', dir);
  dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
  pharmacy = await hub.pharmacy('DE', 'DE-APO-1');
  await node.replicator.waitFor(hub.store.feed('DE').last()!.seq, 30_000);
}, 90_000);

afterAll(async () => {
  await dispatcher?.close();
  await node?.close();
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await request(`${node.url}${path}`, {
    method,
    dispatcher,
    headers: {
      authorization: `Bearer ${await pharmacy.token()}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

const pack = (serial: string) => ({ productCode: CODE, serial, batch: 'B1', expiry: '291200' });

async function until(what: string, check: () => boolean | Promise<boolean>, budgetMs = 30_000): Promise<void> {
  const deadline = Date.now() + budgetMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('transaction ids', () => {
  it('take what the hub takes, 100 visible ASCII characters, and nothing the hub would refuse', async () => {
    const longest = `${'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'}${'x'.repeat(68)}`;
    expect(longest).toHaveLength(100);
    const res = await call('POST', '/v1/packs/supply', { txId: longest, ...pack(serials[0]!) });
    expect(res).toMatchObject({ status: 200, json: { txId: longest, outcome: 'accepted', code: 'CHANGED' } });
    expect(hub.store.packDecision(pharmacy.clientId, longest)).toMatchObject({ result: { accepted: true } });
    for (const txId of [`${longest}x`, 'till 3', 'till\u00003', 'tïll-3', '']) {
      const refused = await call('POST', '/v1/packs/supply', { txId, ...pack(serials[1]!) });
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
    await hub.stop();
    const kept = await call('POST', '/v1/packs/supply', { txId: 'after-1', ...pack(serials[3]!) });
    expect(kept).toMatchObject({ status: 202, json: { outcome: 'pending' } });
    expect(await call('GET', '/v1/transactions/after-1')).toEqual(kept);
    await node.close();

    // Ahead of it in the outbox, a change the hub will refuse for good: kept by a node whose clock
    // ran two hours ahead, so its time lies outside its token's validity (HUB_EVENT_TIME_INVALID).
    const local = Store.open({ path: join(dir, 'de-1', 'local') });
    const token = await pharmacy.token();
    const at = Date.now() + 2 * 3600_000;
    const refused: PendingEvent = {
      txId: 'skewed-1',
      clientId: pharmacy.clientId,
      ...pack(serials[2]!),
      op: 'supply',
      at: Date.now() - 1000,
      token,
    };
    await local.transaction(() =>
      local
        .db<PendingEvent, string>('event-outbox')
        .putSync(`${String(refused.at).padStart(15, '0')}|${pharmacy.clientId}|skewed-1`, { ...refused, at }),
    );
    await local.close();

    await hub.start();
    node = await startTestNode(hub, 'DE', 'de-1', dir);
    await until('the outbox to be sent', () => node.stateChanges.pending() === 0);

    // The change behind it was decided; the refused one was not retried, and is the final answer.
    expect(hub.store.packs.get(CODE + serials[3])).toMatchObject({ s: 'SUPPLIED' });
    expect(hub.store.packs.get(CODE + serials[2])).toMatchObject({ s: 'ACTIVE' });
    expect(await call('GET', '/v1/transactions/after-1')).toMatchObject({
      status: 200,
      json: { txId: 'after-1', outcome: 'accepted', code: 'CHANGED' },
    });
    const answer = await call('GET', '/v1/transactions/skewed-1');
    expect(answer).toEqual({
      status: 200,
      json: {
        txId: 'skewed-1',
        operation: 'supply',
        ...pack(serials[2]!),
        outcome: 'refused',
        code: 'HUB_EVENT_TIME_INVALID',
        detail: expect.stringMatching(/^the hub refused the change: hub answered 403 for \/v1\/packs\/events: /),
      },
    });
    // Asked again with the same request, the pharmacy gets the same answer.
    expect(await call('POST', '/v1/packs/supply', { txId: 'skewed-1', ...pack(serials[2]!) })).toEqual(answer);

    const health = (await (await request(`${node.url}/health`, { dispatcher })).body.json()) as Record<string, unknown>;
    expect(health).toMatchObject({ changesPending: 0, deadLetters: 1 });
    const metrics = await (await request(`${node.url}/metrics`, { dispatcher })).body.text();
    expect(metrics).toContain('packtrust_dead_letters{market="DE",node="de-1"} 1\n');
    expect(metrics).toContain(
      'packtrust_dead_letters_by_code{market="DE",node="de-1",kind="event",code="HUB_EVENT_TIME_INVALID"} 1\n',
    );
  }, 90_000);

  it('answers 404 for a transaction id the client never used, and for another client’s', async () => {
    expect(await call('GET', '/v1/transactions/never-used')).toEqual({
      status: 404,
      json: {
        type: 'https://packtrust.dev/problems/node-tx-unknown',
        title: 'No state change of this client has this transaction id',
        status: 404,
        detail: 'This client made no state change with transaction id never-used',
        code: 'NODE_TX_UNKNOWN',
      },
    });
    const other = await hub.pharmacy('DE', 'DE-APO-2');
    const res = await request(`${node.url}/v1/transactions/after-1`, {
      dispatcher,
      headers: { authorization: `Bearer ${await other.token()}` },
    });
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toMatchObject({ code: 'NODE_TX_UNKNOWN' });
  });
});
