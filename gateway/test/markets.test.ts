import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P256 } from '../../ca/test/fixtures.ts';
import { generateClientKey, TokenClient } from '../../clients/token-client.ts';
import { PacktrustError } from '../../common/src/errors.ts';
import { FMD_MARKETS } from '../../common/src/markets.ts';
import { ClientRegistry } from '../src/oauth/clients.ts';
import { type Credential, productJson, randomSerials, startTestHub, type TestHub } from './fixtures.ts';

// The hub serves a configured list of markets (default: the FMD markets). Each market is a feed,
// an LMDB database: a market a client names must never create one (docs/operations.md, "Markets").

let hub: TestHub;
let maker: Credential;

beforeAll(async () => {
  hub = await startTestHub();
  await hub.registerPrefix('ACME', '9506000');
  maker = await hub.credential('manufacturer', 'ACME');
}, 60_000);
afterAll(() => hub?.close());

/** Two-letter codes that are not FMD markets, in a fixed order. */
function inventedMarkets(n: number): string[] {
  const out: string[] = [];
  const A = 'A'.charCodeAt(0);
  for (let i = 0; out.length < n; i++) {
    const code = String.fromCharCode(A + Math.floor(i / 26), A + (i % 26));
    if (!(FMD_MARKETS as readonly string[]).includes(code)) out.push(code);
  }
  return out;
}

/** The named databases of the hub's LMDB environment. */
const databases = () => [...hub.store.store.root.getKeys()].map(String);
const evidenceCount = () => hub.store.evidence.last()?.seq ?? 0;

async function tokenFor(market: string): Promise<string> {
  const { privateJwk, jwks } = await generateClientKey();
  const { clientId } = await new ClientRegistry(hub.store).add({
    market,
    role: 'pharmacy',
    location: 'APO-1',
    org: 'APO',
    jwks,
  });
  const client = new TokenClient({ issuer: hub.oauth.issuer, clientId, privateJwk, ca: hub.t.ca.chainPem() });
  try {
    return (await client.token()).accessToken;
  } finally {
    await client.close();
  }
}

describe('POST /v1/products with markets the hub does not serve', () => {
  it('answers 400 HUB_MARKET_UNKNOWN naming them, and writes nothing', async () => {
    const before = evidenceCount();
    const res = await hub
      .client(maker)
      .write('POST', '/v1/products', JSON.stringify(productJson('09506000134352', ['DE', 'QQ', 'FR', 'ZZ'])));
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json()).toEqual({
      type: 'https://packtrust.dev/problems/hub-market-unknown',
      title: 'The hub does not serve this market (not in its configured list)',
      status: 400,
      detail: 'This hub does not serve QQ, ZZ',
      code: 'HUB_MARKET_UNKNOWN',
      errors: [
        { path: '/markets/1', message: 'QQ is not a market this hub serves' },
        { path: '/markets/3', message: 'ZZ is not a market this hub serves' },
      ],
    });
    expect(evidenceCount()).toBe(before);
    expect(hub.store.products.get('09506000134352')).toBeUndefined();
    expect(databases()).not.toContain('feed-QQ');
  });

  it('after 300 invented markets still accepts writes and issues tokens, also after a restart', async () => {
    const dbsBefore = databases();
    const evidenceBefore = evidenceCount();
    const upload = hub.client(maker);
    const statuses = new Map<number, number>();
    for (const market of inventedMarkets(300)) {
      const res = await upload.write('POST', '/v1/products', JSON.stringify(productJson('09506000134369', [market])));
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 400: 300 });
    expect(evidenceCount()).toBe(evidenceBefore);
    expect(databases()).toEqual(dbsBefore);

    const accepted = async () => {
      const code = '09506000134376';
      const res = await hub.client(maker).write('POST', '/v1/products', JSON.stringify(productJson(code, ['DE'])));
      expect(res.status).toBeLessThan(300);
      expect(res.json()).toMatchObject({ product: { productCode: code, markets: ['DE'] } });
      expect(await tokenFor('DE')).toMatch(/^ey/);
    };
    await accepted();
    await hub.restart();
    await accepted();
    // Every served market has a feed (each carries the token signing keys); no invented one has.
    expect(databases().filter((d) => d.startsWith('feed-'))).toEqual(FMD_MARKETS.map((m) => `feed-${m}`).sort());
  }, 120_000);
});

describe('the feed of a market the hub does not serve', () => {
  it('answers 404 HUB_FEED_UNKNOWN to records and snapshot, opening nothing', async () => {
    const node = hub.client(await hub.credential('verifier-node', 'NMVO-QQ', P256, { market: 'QQ' }));
    for (const path of ['/v1/feed/QQ/records?after=0&wait=1000', '/v1/feed/QQ/snapshot']) {
      const res = await node.get(path);
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.json()).toEqual({
        type: 'https://packtrust.dev/problems/hub-feed-unknown',
        title: 'No feed: the hub does not serve this market',
        status: 404,
        detail: 'This hub serves no market QQ',
        code: 'HUB_FEED_UNKNOWN',
      });
    }
    expect(databases()).not.toContain('feed-QQ');
  });
});

describe('ClientRegistry.add', () => {
  it('refuses a market the hub does not serve, registering nothing', async () => {
    const registry = new ClientRegistry(hub.store);
    const before = registry.list().length;
    const { jwks } = await generateClientKey();
    const err = await registry
      .add({ market: 'QQ', role: 'pharmacy', location: 'APO-9', org: 'APO', jwks })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PacktrustError);
    expect((err as PacktrustError).toProblem()).toEqual({
      type: 'https://packtrust.dev/problems/oauth-client-invalid',
      title: 'Invalid client registration',
      status: 400,
      detail: 'market QQ is not one this hub serves',
      code: 'OAUTH_CLIENT_INVALID',
    });
    expect(registry.list()).toHaveLength(before);
  });
});

describe('a store whose data names markets no longer configured', () => {
  it('starts, keeps their feeds unopened, and publishes changes of such products to the configured markets only', async () => {
    // XI was configured once: a product registered then lists it, and XI has a feed.
    const code = '09506000134383';
    const upload = hub.client(maker);
    expect((await upload.write('POST', '/v1/products', JSON.stringify(productJson(code, ['DE'])))).status).toBe(201);
    const serials = randomSerials(20);
    const packs = await upload.write(
      'POST',
      `/v1/products/${code}/batches/B1/packs?expiry=291200`,
      serials.join('\n'),
      {
        contentType: 'text/plain',
      },
    );
    expect(packs.status).toBe(201);
    await hub.store.transaction(() => {
      hub.store.putProduct({ ...hub.store.product(code)!, markets: ['DE', 'XI'] });
      hub.store.store.db('feed-XI').putSync(1, { seq: 1, prev: '0'.repeat(64), hash: 'x', body: {} });
    });
    await hub.restart();
    expect(hub.store.dormantMarkets()).toEqual(['XI']);

    const deBefore = hub.store.feed('DE').last()!.seq;
    const recall = await hub
      .client(maker)
      .write('POST', `/v1/products/${code}/batches/B1/recall`, JSON.stringify({ reason: 'test' }));
    expect(recall.status).toBe(200);
    expect(hub.store.feed('DE').last()).toMatchObject({ seq: deBefore + 1, body: { type: 'batch' } });
    expect(hub.store.store.db('feed-XI').getCount()).toBe(1);
    const node = hub.client(await hub.credential('verifier-node', 'NMVO-XI', P256, { market: 'XI' }));
    expect((await node.get('/v1/feed/XI/records')).json()).toMatchObject({ status: 404, code: 'HUB_FEED_UNKNOWN' });
  });
});
