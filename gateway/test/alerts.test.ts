import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadClient } from '../../clients/upload-client.ts';
import { ALERTS_SCANNED_PER_PAGE, type StoredAlert } from '../src/hub-store.ts';
import { productJson, startTestHub, type TestHub } from './fixtures.ts';

/**
 * GET /v1/alerts a page at a time, newest first, through the real mutual-TLS listener. The alerts
 * are put in the store directly: a node may deliver no more than 1,000 of one client's alerts at
 * a time (actors.test.ts), and these need times of our choosing.
 */

const A = '09506000134352';
const B = '09506000134369';
const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const PROBLEM = 'application/problem+json; charset=utf-8';
let hub: TestHub;
let acme: UploadClient;
let beta: UploadClient;
/** ACME's alerts as it reads them, newest first (raisedAt, then id, descending). */
let acmeAlerts: Seen[];

const alert = (owner: string, i: number, over: Partial<StoredAlert> = {}): StoredAlert => ({
  id: `${owner}-${String(i).padStart(5, '0')}`,
  code: (['A2', 'A3', 'A7'] as const)[i % 3]!,
  returnCode: 'SERIAL_UNKNOWN',
  detail: 'serial is not registered for this product',
  market: 'DE',
  nodeId: 'de-1',
  pack: { productCode: i % 2 === 0 ? A : B, serial: `S${i}`, batch: i % 5 === 0 ? 'B2' : 'B1', expiry: '291200' },
  raisedBy: { clientId: 'de-pharmacy-1', org: 'APO-1', location: 'APO-1', role: 'pharmacy' },
  // Three alerts in each second: the id orders those raised at the same time.
  raisedAt: new Date(T0 + Math.floor(i / 3) * 1000).toISOString(),
  receivedAt: new Date(T0 + Math.floor(i / 3) * 1000 + 50).toISOString(),
  owner,
  ...over,
});

/**
 * An alert as its owner reads it: `reporter` for `raisedBy` (alert-reporters.test.ts checks the
 * references; all of these are one reporter's).
 */
type Seen = Omit<StoredAlert, 'raisedBy'> & { reporter: unknown };
const seen = ({ raisedBy: _who, ...rest }: StoredAlert): Seen => ({
  ...rest,
  reporter: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
});

const newestFirst = (list: StoredAlert[]) =>
  [...list].sort((x, y) => (x.raisedAt === y.raisedAt ? (x.id < y.id ? 1 : -1) : x.raisedAt < y.raisedAt ? 1 : -1));

beforeAll(async () => {
  hub = await startTestHub();
  await hub.registerPrefix('ACME', '9506000');
  acme = hub.client(await hub.credential('manufacturer', 'ACME'));
  beta = hub.client(await hub.credential('manufacturer', 'BETA'));
  for (const code of [A, B]) {
    expect((await acme.write('POST', '/v1/products', JSON.stringify(productJson(code)))).status).toBe(201);
  }
  const kept = Array.from({ length: 1500 }, (_, i) => alert('ACME', i));
  await hub.store.transaction(() => {
    for (const a of kept) hub.store.addAlert(a);
    for (let i = 0; i < 30; i++) hub.store.addAlert(alert('BETA', i));
  });
  acmeAlerts = newestFirst(kept).map(seen);
}, 90_000);

afterAll(() => hub?.close());

async function get(client: UploadClient, query: string) {
  const res = await client.get(`/v1/alerts${query}`);
  return { status: res.status, type: res.headers['content-type'], body: res.json<Record<string, unknown>>() };
}

/** Every page of a query, followed by its `next`; the pages' sizes and all alerts in order. */
async function allPages(client: UploadClient, query: string) {
  const sizes: number[] = [];
  const alerts: Seen[] = [];
  let cursor: string | undefined;
  do {
    const sep = query ? '&' : '?';
    const page = await get(client, `${query}${cursor ? `${sep}cursor=${cursor}` : ''}`);
    expect(page.status).toBe(200);
    const body = page.body as { alerts: Seen[]; next?: string };
    sizes.push(body.alerts.length);
    alerts.push(...body.alerts);
    cursor = body.next;
  } while (cursor !== undefined);
  return { sizes, alerts };
}

describe('GET /v1/alerts pages', () => {
  it('answers the newest 100 first, with a cursor to the next page', async () => {
    expect(await get(acme, '')).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      body: { alerts: acmeAlerts.slice(0, 100), next: expect.any(String) },
    });
  });

  it('reads all of 1,500 alerts newest first, no gap and no repeat, at the largest page and the default one', async () => {
    expect(await allPages(acme, '?limit=1000')).toEqual({ sizes: [1000, 500], alerts: acmeAlerts });
    const byDefault = await allPages(acme, '');
    expect(byDefault.sizes).toEqual(Array(15).fill(100));
    expect(byDefault.alerts).toEqual(acmeAlerts);
  });

  it('gives no next on the last page', async () => {
    // The 10th newest was raised in the same second as the 11th and 12th, which `from` keeps too.
    const last = await get(acme, `?limit=10&from=${acmeAlerts[9]!.raisedAt}`);
    expect(last.body).toEqual({ alerts: acmeAlerts.slice(0, 10), next: expect.any(String) });
    expect(await get(acme, `?limit=12&from=${acmeAlerts[9]!.raisedAt}`)).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      body: { alerts: acmeAlerts.slice(0, 12) },
    });
  });
});

describe('GET /v1/alerts filters', () => {
  it.each([
    ['productCode', `productCode=${B}`, (a: Seen) => a.pack.productCode === B],
    ['batch', 'batch=B2', (a: Seen) => a.pack.batch === 'B2'],
    ['code', 'code=A7', (a: Seen) => a.code === 'A7'],
    [
      'from (included) and to (excluded)',
      `from=${new Date(T0 + 100_000).toISOString()}&to=${new Date(T0 + 200_000).toISOString()}`,
      (a: Seen) =>
        a.raisedAt >= new Date(T0 + 100_000).toISOString() && a.raisedAt < new Date(T0 + 200_000).toISOString(),
    ],
    [
      'all at once, with times in another zone',
      `productCode=${A}&batch=B1&code=A3&from=2026-03-01T01:00:00%2B01:00&to=2026-03-01T00:05:00Z`,
      (a: Seen) =>
        a.pack.productCode === A && a.pack.batch === 'B1' && a.code === 'A3' && a.raisedAt < '2026-03-01T00:05:00.000Z',
    ],
  ])('%s', async (_name, query, keep) => {
    const expected = acmeAlerts.filter(keep);
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(acmeAlerts.length);
    const { alerts } = await allPages(acme, `?limit=37&${query}`);
    expect(alerts).toEqual(expected);
  });

  it('answers an empty range with no alerts and no next', async () => {
    const at = acmeAlerts[0]!.raisedAt;
    expect(await get(acme, `?from=${at}&to=${at}`)).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      body: { alerts: [] },
    });
  });

  it('looks at no more than 10,000 alerts a page: a narrow filter gets pages with fewer, and finds what it asks for', async () => {
    await hub.registerPrefix('GAMMA', '9506001');
    const gamma = hub.client(await hub.credential('manufacturer', 'GAMMA'));
    const many = ALERTS_SCANNED_PER_PAGE + 500;
    // Only the oldest is an A24.
    await hub.store.transaction(() => {
      for (let i = 0; i < many; i++) hub.store.addAlert(alert('GAMMA', i, i === 0 ? { code: 'A24' } : { code: 'A2' }));
    });
    const first = await get(gamma, '?code=A24');
    expect(first).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      body: { alerts: [], next: expect.any(String) },
    });
    expect(await get(gamma, `?code=A24&cursor=${first.body.next}`)).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      body: { alerts: [seen(alert('GAMMA', 0, { code: 'A24' }))] },
    });
  });
});

describe('GET /v1/alerts cursors', () => {
  const refused = (detail: string) => ({
    status: 400,
    type: PROBLEM,
    body: {
      type: 'https://packtrust.dev/problems/bad-request',
      title: 'The request is malformed',
      status: 400,
      code: 'BAD_REQUEST',
      detail,
    },
  });
  const foreign = 'The cursor is not one of your alert pages; start again without it';

  it("refuses another organisation's cursor, both ways", async () => {
    const betaPage = await get(beta, '?limit=10');
    expect(betaPage.body).toEqual({
      alerts: newestFirst(Array.from({ length: 30 }, (_, i) => alert('BETA', i)))
        .slice(0, 10)
        .map(seen),
      next: expect.any(String),
    });
    expect(await get(acme, `?cursor=${betaPage.body.next}`)).toEqual(refused(foreign));
    const acmePage = await get(acme, '?limit=10');
    expect(await get(beta, `?cursor=${acmePage.body.next}`)).toEqual(refused(foreign));
  });

  it('refuses a cursor made up to reach past the owner (another prefix, a key before all of ACME)', async () => {
    for (const key of ['BETA|2026-03-01T00:00:09.000Z|BETA-00029', 'ACM', 'ACMEX|9999', '']) {
      const made = Buffer.from(key).toString('base64url') || 'AA';
      expect(await get(acme, `?cursor=${made}`)).toEqual(refused(foreign));
    }
  });

  it("yields only the owner's alerts for a made-up cursor inside its own keys", async () => {
    const made = Buffer.from('ACME|').toString('base64url');
    expect(await get(acme, `?cursor=${made}`)).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      body: { alerts: [] },
    });
  });
});

describe('GET /v1/alerts bad parameters', () => {
  it.each([
    ['limit=0'],
    ['limit=1001'],
    ['limit=ten'],
    ['code=A99'],
    ['from=yesterday'],
    ['to=2026-03-01'],
    ['batch='],
    ['productCode=123'],
    ['cursor=not%20base64'],
  ])('%s: 400 BAD_REQUEST', async (query) => {
    const res = await get(acme, `?${query}`);
    expect(res).toEqual({
      status: 400,
      type: PROBLEM,
      body: {
        type: 'https://packtrust.dev/problems/bad-request',
        title: 'The request is malformed',
        status: 400,
        code: 'BAD_REQUEST',
        detail: expect.stringMatching(/^Request querystring is invalid: querystring\//),
        errors: [{ path: expect.stringMatching(/^\/[a-zA-Z]+$/), message: expect.any(String) }],
      },
    });
  });

  it('refuses from after to, and a time no clock has', async () => {
    expect(await get(acme, '?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z')).toEqual({
      status: 400,
      type: PROBLEM,
      body: {
        type: 'https://packtrust.dev/problems/bad-request',
        title: 'The request is malformed',
        status: 400,
        code: 'BAD_REQUEST',
        detail: 'from (2026-03-02T00:00:00Z) is after to (2026-03-01T00:00:00Z)',
      },
    });
    expect(await get(acme, '?from=2020-01-01T23:59:60Z')).toEqual({
      status: 400,
      type: PROBLEM,
      body: {
        type: 'https://packtrust.dev/problems/bad-request',
        title: 'The request is malformed',
        status: 400,
        code: 'BAD_REQUEST',
        detail: 'from (2020-01-01T23:59:60Z) is not a time',
      },
    });
  });

  it("refuses another organisation's product code with 403", async () => {
    expect(await get(beta, `?productCode=${A}`)).toEqual({
      status: 403,
      type: PROBLEM,
      body: {
        type: 'https://packtrust.dev/problems/hub-not-owner',
        title: expect.any(String),
        status: 403,
        code: 'HUB_NOT_OWNER',
        detail: `No product ${A} owned by BETA`,
      },
    });
  });
});
