import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT } from 'jose';
import { Agent, fetch, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey } from '../../clients/token-client.ts';
import { PacktrustError } from '../../common/src/errors.ts';
import { SnapshotSlots } from '../src/feed.ts';
import { removeExpiredEntries } from '../src/oauth/adapter.ts';
import type { OAuthRefusalSummary } from '../src/oauth/audit.ts';
import { ClientRegistry } from '../src/oauth/clients.ts';
import { RateLimiter } from '../src/oauth/rate-limit.ts';
import { type Credential, productJson, randomSerials, startTestHub, type TestHub } from './fixtures.ts';

// What a client sends must not create server state without bound: each test here sends what an
// attacker would, many times, and looks at what the hub kept.

let hub: TestHub;
let maker: Credential;
let dispatcher: Agent;

beforeAll(async () => {
  hub = await startTestHub();
  await hub.registerPrefix('ACME', '9506000');
  maker = await hub.credential('manufacturer', 'ACME');
  dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
}, 60_000);
afterAll(async () => {
  await dispatcher?.close();
  await hub?.close();
});

const oauth = (path: string, init: { method?: string; body?: string } = {}) =>
  fetch(`${hub.oauth.issuer}${path}`, {
    dispatcher,
    ...init,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
const auditCount = () => hub.oauth.audit.last()?.seq ?? 0;

describe('NonceStore.prune', () => {
  it('removes the nonces whose signatures could no longer be accepted, page by page, and keeps the live ones', async () => {
    const res = await hub.client(maker).write('POST', '/v1/products', JSON.stringify(productJson('09506000134352')));
    expect(res.status).toBe(201);
    const { nonce, clientFingerprint } = hub.store.evidence.last()!.body;
    const now = Date.now();
    // More than two pages of nonces that aged out.
    await hub.store.store.transaction(() => {
      for (let i = 0; i < 2500; i++) hub.store.nonces.claim('aged', `nonce-${i}`, now - 1000 - i, now - 300_000);
    });

    expect(await hub.store.nonces.prune(now)).toBe(2500);
    expect(hub.store.nonces.seen(clientFingerprint, nonce, now)).toBe(true);
    // Once its signature's window is over (300 s and a second), the write's nonce goes too.
    expect(await hub.store.nonces.prune(now + 302_000)).toBe(1);
    expect(hub.store.nonces.seen(clientFingerprint, nonce, now)).toBe(false);
    expect(await hub.store.nonces.prune(now + 302_000)).toBe(0);
  });
});

describe('failed token requests', () => {
  it('keep the first ones verbatim and count the rest in one record per minute', async () => {
    await hub.restart(); // a fresh counting window
    const before = auditCount();
    const fail = async (clientId: string) => {
      const res = await oauth('/token', {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: clientId,
          client_secret: 'x',
        }).toString(),
      });
      expect(res.status).toBe(401);
      await res.body?.cancel();
    };
    for (let i = 0; i < 150; i++) await fail('de-pharmacy-made-up');
    for (let i = 0; i < 150; i++) await fail(`made-up-${randomUUID()}`);
    await hub.restart(); // closing the provider writes the window's count

    const written = [...hub.oauth.audit.entries(before + 1)].map((e) => e.body);
    expect(written).toHaveLength(101);
    const verbatim = written.slice(0, 100);
    expect(verbatim.every((r) => r.event === 'auth-failed')).toBe(true);
    expect(verbatim.filter((r) => r.event === 'auth-failed' && r.clientId === 'de-pharmacy-made-up')).toHaveLength(5);
    expect(verbatim[0]).toEqual({
      time: expect.any(String),
      event: 'auth-failed',
      clientId: 'de-pharmacy-made-up',
      address: '127.0.0.1',
      error: 'invalid_client',
      description: 'client not found',
    });
    const summary = written[100] as OAuthRefusalSummary;
    expect(summary).toMatchObject({ event: 'refusals-counted', otherRefusals: 0 });
    expect(summary.refusals).toHaveLength(151);
    expect(summary.refusals[0]).toEqual({
      event: 'auth-failed',
      clientId: 'de-pharmacy-made-up',
      address: '127.0.0.1',
      error: 'invalid_client',
      count: 150,
      unrecorded: 145,
    });
    expect(summary.refusals.reduce((n, r) => n + r.count, 0)).toBe(300);
    expect(summary.refusals.reduce((n, r) => n + r.unrecorded, 0)).toBe(200);
  }, 60_000);
});

describe('OAuth endpoints the hub does not offer', () => {
  it('answer 404 and store nothing (logout used to store a session for anyone asking)', async () => {
    for (let i = 0; i < 300; i++) {
      const res = await oauth(i % 2 ? '/session/end' : '/auth?client_id=x&response_type=code&redirect_uri=https://x');
      expect(res.status).toBe(404);
      await res.body?.cancel();
    }
    const res = await oauth('/session/end?state=1');
    expect(res.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    expect(await res.json()).toEqual({
      type: 'https://packtrust.dev/problems/not-found',
      title: 'Not found',
      status: 404,
      detail: 'No OAuth endpoint /oauth/session/end',
      code: 'NOT_FOUND',
    });
    const stored = [...hub.store.store.root.getKeys({ start: 'oauth-', end: 'oauth.' })]
      .map(String)
      .filter((name) => hub.store.store.db(name).getCount() > 0);
    expect(stored).toEqual(['oauth-audit', 'oauth-signing-keys']);
  });
});

describe('failed token requests of every kind', () => {
  it('write nothing but the bounded audit: 400 failures and refusals, at most 101 records', async () => {
    const { privateJwk, jwks } = await generateClientKey();
    const signer = await new ClientRegistry(hub.store).add({
      market: 'DE',
      role: 'pharmacy',
      location: 'B-1',
      org: 'B',
      jwks,
    });
    const secret = await new ClientRegistry(hub.store).add({
      market: 'DE',
      role: 'pharmacy',
      location: 'B-2',
      org: 'B',
      secret: true,
      secretMethod: 'post',
    });
    const thief = await generateClientKey();
    await hub.restart(); // a fresh counting window
    /** Entries per database of the hub store. */
    const counts = () =>
      Object.fromEntries(
        [...hub.store.store.root.getKeys()].map((name) => [String(name), hub.store.store.db(String(name)).getCount()]),
      );
    const before = counts();
    const form = (fields: Record<string, string>) =>
      oauth('/token', {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'client_credentials', ...fields }).toString(),
      });
    const assertion = async (clientId: string, jwk: typeof privateJwk) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(`${hub.oauth.issuer}/token`)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(await importJWK(jwk, 'ES256'));
    const statuses = new Map<number, number>();
    for (let i = 0; i < 100; i++) {
      for (const res of await Promise.all([
        form({ client_id: `made-up-${i}`, client_secret: 'x' }),
        form({ client_id: secret.clientId, client_secret: `wrong-${i}` }),
        form({
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await assertion(signer.clientId, thief.privateJwk),
        }),
        form({ client_id: signer.clientId }),
      ])) {
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        await res.body?.cancel();
      }
    }
    await hub.restart(); // closing the provider writes the window's count
    const after = counts();
    // Refused (401, 400), then rate-limited per client and address (429): none of it authenticated.
    expect([...statuses.keys()].every((s) => s >= 400)).toBe(true);
    expect([...statuses.values()].reduce((a, b) => a + b)).toBe(400);
    const changed = Object.keys(after).filter((name) => after[name] !== before[name]);
    expect(changed).toEqual(['oauth-audit']);
    expect(after['oauth-audit']! - before['oauth-audit']!).toBeLessThanOrEqual(101);
  }, 60_000);
});

describe('removeExpiredEntries', () => {
  it('removes the replay records of client assertions once they can no longer be used', async () => {
    await (await hub.pharmacy('DE', 'APO-1')).token();
    const replays = hub.store.store.db('oauth-ReplayDetection');
    const count = replays.getCount();
    expect(count).toBeGreaterThan(0);
    expect(await removeExpiredEntries(hub.store.store, ['ReplayDetection'])).toBe(0);
    expect(await removeExpiredEntries(hub.store.store, ['ReplayDetection'], Date.now() + 2 * 3600_000)).toBe(count);
    expect(replays.getCount()).toBe(0);
  });
});

describe('RateLimiter.take', () => {
  it('keeps at most maxKeys buckets, making room by dropping the least recently used', () => {
    const limiter = new RateLimiter(0.001, 1, 2);
    expect(limiter.take('a', 0)).toBe(true);
    expect(limiter.take('b', 0)).toBe(true);
    expect(limiter.take('a', 1)).toBe(false);
    // c makes room: b goes (used longest ago), a stays empty.
    expect(limiter.take('c', 2)).toBe(true);
    expect(limiter.take('a', 3)).toBe(false);
    expect(limiter.take('b', 4)).toBe(true);
    expect(limiter.take('b', 5)).toBe(false);
  });
});

describe('feed snapshots', () => {
  it('are sent one at a time per node certificate: a reader that stops reading holds no second one', async () => {
    // Enough packs that an unread snapshot stays open (it does not fit in the socket buffers).
    const code = '09506000134369';
    const up = hub.client(maker);
    expect((await up.write('POST', '/v1/products', JSON.stringify(productJson(code, ['AT'])))).status).toBe(201);
    for (let b = 0; b < 4; b++) {
      const packs = await up.write(
        'POST',
        `/v1/products/${code}/batches/B${b}/packs?expiry=291200`,
        randomSerials(100_000).join('\n'),
        { contentType: 'text/plain' },
      );
      expect(packs.status).toBe(201);
    }
    const cred = await hub.credential('verifier-node', 'NMVO-AT', undefined, { market: 'AT' });
    const node = new Agent({ connect: { ca: hub.t.ca.chainPem(), cert: cred.certPem, key: cred.keyPem } });
    const snapshot = () => request(`${hub.hubUrl}/v1/feed/AT/snapshot`, { dispatcher: node });
    try {
      const unread = await snapshot();
      expect(unread.statusCode).toBe(200);
      const busy = await snapshot();
      expect(busy.statusCode).toBe(503);
      expect(busy.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(await busy.body.json()).toEqual({
        type: 'https://packtrust.dev/problems/hub-snapshot-busy',
        title: 'No snapshot can be sent now (one per node certificate at a time, a few at once); try again shortly',
        status: 503,
        detail: 'A snapshot is already being sent to this certificate; try again when it has ended',
        code: 'HUB_SNAPSHOT_BUSY',
      });
      // Another node of the market is not held up, and the first reader's slot is freed when it goes.
      const other = await hub.credential('verifier-node', 'NMVO-AT', undefined, { market: 'AT' });
      const otherNode = hub.client(other);
      expect((await otherNode.get('/v1/feed/AT/snapshot')).status).toBe(200);
      unread.body.destroy();
      let again = await snapshot();
      for (let i = 0; again.statusCode === 503 && i < 100; i++) {
        await again.body.dump();
        await new Promise((r) => setTimeout(r, 50));
        again = await snapshot();
      }
      expect(again.statusCode).toBe(200);
      const lines = (await again.body.text()).trim().split('\n');
      expect(JSON.parse(lines.at(-1)!)).toEqual({ type: 'end', products: 1, batches: 4, packs: 400_000 });
    } finally {
      await node.destroy();
    }
  }, 120_000);
});

describe('SnapshotSlots.claim', () => {
  it('gives each client one slot and all of them a bounded number; a release frees its slot once', () => {
    const slots = new SnapshotSlots({ perClient: 1, total: 2 });
    const a = slots.claim('a');
    expect(() => slots.claim('a')).toThrow(PacktrustError);
    const b = slots.claim('b');
    expect(() => slots.claim('c')).toThrow(/sending 2 snapshots/);
    a();
    a();
    const c = slots.claim('c');
    expect(() => slots.claim('d')).toThrow(/sending 2 snapshots/);
    b();
    c();
    expect(() => slots.claim('a')).not.toThrow();
  });
});
