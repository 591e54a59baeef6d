import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CODE, FreezableRelay, type NodeHarness, startNodeHarness } from './fixtures.ts';

/**
 * A hung hub (a process stopped with SIGSTOP, a stalled network) must not hold a pharmacy: every
 * call from a node to the hub has a deadline, past which a state change waits in the outbox and the
 * pharmacy is answered `pending` at once. The hub here sits behind a TCP relay that can freeze
 * (fixtures.ts `FreezableRelay`): it keeps every connection open but passes no byte, as a stopped
 * process would.
 */

const DEADLINE_MS = 1000;
let h: NodeHarness;
let relay: FreezableRelay;

const supply = (serial: string, txId: string) =>
  h.call('/v1/packs/supply', { txId, productCode: CODE, serial, batch: 'B1', expiry: '291200' });

beforeAll(async () => {
  h = await startNodeHarness({
    name: 'deadline',
    seed: 100,
    node: async (hub) => {
      relay = new FreezableRelay(Number(new URL(hub.hubUrl).port));
      const relayPort = await relay.listen();
      // The node reaches the hub through the relay: that is the hub's published URL now.
      hub.publishAt(`https://127.0.0.1:${relayPort}`);
      return { hubUrl: `https://127.0.0.1:${relayPort}`, hubDeadlineMs: DEADLINE_MS };
    },
  });
}, 90_000);

afterAll(async () => {
  await h?.close();
  await relay?.close();
});

describe('a hub that stops answering', () => {
  it('gets the pharmacy a pending answer within the deadline, and the change is decided once when the hub is back', async () => {
    // A kept-alive connection to the hub exists: the hung hub is met on it, not at connect.
    expect((await supply(h.serials[0]!, 'before-1')).json).toMatchObject({ outcome: 'accepted' });

    relay.freeze();
    const started = performance.now();
    const pending = await supply(h.serials[1]!, 'hung-1');
    const ms = performance.now() - started;
    expect(pending).toMatchObject({ status: 202, json: { outcome: 'pending', code: 'PENDING' } });
    // The deadline (1 s here) and not an HTTP library's minutes; a generous bound for a busy machine.
    expect(ms).toBeLessThan(15_000);
    expect(h.node.stateChanges.pending()).toBe(1);

    // The hub resumes: the request it never answered arrives now, and the outbox sends it again.
    relay.thaw();
    const deadline = Date.now() + 60_000;
    while (h.node.stateChanges.pending() > 0 && Date.now() < deadline) await sleep(100);
    expect(h.node.stateChanges.pending()).toBe(0);

    expect(h.hub.store.packs.get(CODE + h.serials[1])).toMatchObject({
      s: 'SUPPLIED',
      by: { clientId: h.pharmacy.clientId, location: 'DE-APO-1' },
    });
    const decisions = [...h.hub.store.feed('DE').entries()].filter(
      (e) => e.body.type === 'pack-state' && e.body.serial === h.serials[1],
    );
    expect(decisions).toHaveLength(1);
    // The pharmacy asking again gets the decision.
    expect((await supply(h.serials[1]!, 'hung-1')).json).toMatchObject({
      outcome: 'accepted',
      code: 'CHANGED',
      state: 'SUPPLIED',
    });
  }, 120_000);
});
