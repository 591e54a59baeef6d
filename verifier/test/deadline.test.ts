import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Credential } from '../../gateway/test/fixtures.ts';
import { HubUnavailable } from '../src/errors.ts';
import { HubClient } from '../src/hub-client.ts';
import { CODE, FreezableRelay, type NodeHarness, nodeCredential, startNodeHarness } from './fixtures.ts';

/** A second product of the harness's owner (prefix 9506000), for a larger snapshot. */
const OTHER_CODE = '09506000134369';

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
    // 100 packs of CODE for the pharmacy; and a snapshot of some hundred kilobytes, which a relay can stop half-way.
    seed: async (hub) => [
      ...(await hub.seedProduct(CODE, ['DE'], 100)),
      ...(await hub.seedProduct(OTHER_CODE, ['DE'], 30_000)),
    ],
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

describe('a hub that stops sending a snapshot', () => {
  /** Far below the ten seconds undici would wait for a connection, or the minutes for an answer. */
  const SLACK_MS = 6000;
  let snapshotRelay: FreezableRelay;
  let cred: Credential;
  let relayUrl: string;
  const clients: HubClient[] = [];

  beforeAll(async () => {
    snapshotRelay = new FreezableRelay(Number(new URL(h.hub.hubUrl).port));
    relayUrl = `https://127.0.0.1:${await snapshotRelay.listen()}`;
    // A node certificate of its own: the hub sends one snapshot at a time to each.
    cred = await nodeCredential(h.hub, 'DE');
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await snapshotRelay?.close();
  });

  /** Reads the whole snapshot through the relay, with a hub client of `deadlineMs`; the packs it carried. */
  async function download(deadlineMs: number): Promise<number> {
    const client = new HubClient({
      hubUrl: relayUrl,
      market: 'DE',
      certPem: cred.certPem,
      keyPem: cred.keyPem,
      caPem: h.hub.t.ca.chainPem(),
      deadlineMs,
    });
    clients.push(client);
    let carried = 0;
    for await (const line of client.snapshot()) if (line.type === 'packs') carried += line.count;
    return carried;
  }

  it('reads the snapshot whole through the relay', async () => {
    expect(await download(2000)).toBe(h.serials.length);
  });

  it('gives up when the answer does not begin within the deadline, connection included', async () => {
    snapshotRelay.freeze();
    const started = performance.now();
    await expect(download(1000)).rejects.toThrow(HubUnavailable);
    expect(performance.now() - started).toBeLessThan(1000 + SLACK_MS);
    snapshotRelay.thaw();
  });

  it('gives up when the hub stops half-way through, the deadline after the last part it sent', async () => {
    snapshotRelay.freezeAfter(200_000);
    const started = performance.now();
    await expect(download(2000)).rejects.toThrow('the hub sent nothing more of the snapshot for 2000 ms');
    expect(performance.now() - started).toBeLessThan(2000 + SLACK_MS);
    snapshotRelay.thaw();
  });
});
