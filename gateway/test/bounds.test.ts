import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Credential, productJson, startTestHub, type TestHub } from './fixtures.ts';

// What a client sends must not create server state without bound: each test here sends what an
// attacker would, many times, and looks at what the hub kept.

let hub: TestHub;
let maker: Credential;

beforeAll(async () => {
  hub = await startTestHub();
  maker = await hub.credential('manufacturer', 'ACME');
}, 60_000);
afterAll(() => hub?.close());

describe('HubStore.pruneNonces', () => {
  it('removes the nonces whose signatures could no longer be accepted, page by page, and keeps the live ones', async () => {
    const res = await hub.client(maker).write('POST', '/v1/products', JSON.stringify(productJson('09506000134352')));
    expect(res.status).toBe(201);
    const { nonce, clientFingerprint } = hub.store.evidence.last()!.body;
    const now = Date.now();
    // More than two pages of nonces that aged out.
    await hub.store.store.transaction(() => {
      for (let i = 0; i < 2500; i++) hub.store.claimNonce('aged', `nonce-${i}`, now - 1000 - i, now - 300_000);
    });

    expect(await hub.store.pruneNonces(now)).toBe(2500);
    expect(hub.store.nonceSeen(clientFingerprint, nonce, now)).toBe(true);
    // Once its signature's window is over (300 s and a second), the write's nonce goes too.
    expect(await hub.store.pruneNonces(now + 302_000)).toBe(1);
    expect(hub.store.nonceSeen(clientFingerprint, nonce, now)).toBe(false);
    expect(await hub.store.pruneNonces(now + 302_000)).toBe(0);
  });
});
