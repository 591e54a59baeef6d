import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadClient } from '../../clients/upload-client.ts';
import type { StoredAlert } from '../src/hub-store.ts';
import { productJson, startTestHub, type TestHub } from './fixtures.ts';

/**
 * Who raised an alert (docs/domain.md §5, "Who raised an alert"): the product's owner reads a
 * pseudonymous reporter, the same for one reporter across its alerts and another for each owner;
 * the verification organisation of the alert's market reads the identity, through the real
 * mutual-TLS listener with certificates from the real CA. The alerts are put in the store
 * directly, as in alerts.test.ts: their times and reporters are ours to choose.
 */

const A = '09506000134352';
const B = '09506001000007';
const UNKNOWN = '09506009999994';
const JSON_TYPE = 'application/json; charset=utf-8';
const PROBLEM = 'application/problem+json; charset=utf-8';
const P1 = { clientId: 'de-pharmacy-p1', org: 'APO-EINS', location: 'APO-1-LOC', role: 'pharmacy' };
const P2 = { clientId: 'de-pharmacy-p2', org: 'APO-ZWEI', location: 'APO-2-LOC', role: 'pharmacy' };
const P3 = { clientId: 'fr-pharmacy-p3', org: 'PHA-TROIS', location: 'PHA-3-LOC', role: 'pharmacy' };

let hub: TestHub;
let acme: UploadClient;
let beta: UploadClient;
let nmvoDe: UploadClient;
let nmvoFr: UploadClient;

const alert = (
  id: string,
  second: number,
  productCode: string,
  raisedBy: StoredAlert['raisedBy'],
  market: 'DE' | 'FR',
  owner?: string,
): StoredAlert => ({
  id,
  code: 'A2',
  returnCode: 'SERIAL_UNKNOWN',
  detail: 'serial is not registered for this product',
  market,
  nodeId: `${market.toLowerCase()}-1`,
  pack: { productCode, serial: `S-${id}`, batch: 'B1', expiry: '291200' },
  raisedBy,
  raisedAt: new Date(Date.parse('2026-03-01T00:00:00.000Z') + second * 1000).toISOString(),
  receivedAt: new Date(Date.parse('2026-03-01T00:00:00.000Z') + second * 1000 + 50).toISOString(),
  ...(owner ? { owner } : {}),
});

const a1 = alert('a1', 1, A, P1, 'DE', 'ACME');
const a2 = alert('a2', 2, A, P2, 'DE', 'ACME');
const a3 = alert('a3', 3, A, P1, 'DE', 'ACME');
const a4 = alert('a4', 4, A, P3, 'FR', 'ACME');
const b1 = alert('b1', 5, B, P1, 'DE', 'BETA');
const u1 = alert('u1', 6, UNKNOWN, P2, 'DE');

/** An alert as its owner reads it: everything but `raisedBy`, and the reporter's reference. */
const ownerView = ({ raisedBy: _who, ...rest }: StoredAlert, reporter: unknown) => ({ ...rest, reporter });
const REFERENCE = expect.stringMatching(/^[A-Za-z0-9_-]{22}$/);

beforeAll(async () => {
  hub = await startTestHub();
  await hub.registerPrefix('ACME', '9506000');
  await hub.registerPrefix('BETA', '9506001');
  acme = hub.client(await hub.credential('manufacturer', 'ACME'));
  beta = hub.client(await hub.credential('manufacturer', 'BETA'));
  nmvoDe = hub.client(await hub.credential('verification-org', 'NMVO-DE', undefined, { market: 'DE' }));
  nmvoFr = hub.client(await hub.credential('verification-org', 'NMVO-FR', undefined, { market: 'FR' }));
  expect((await acme.write('POST', '/v1/products', JSON.stringify(productJson(A, ['DE', 'FR'])))).status).toBe(201);
  expect((await beta.write('POST', '/v1/products', JSON.stringify(productJson(B)))).status).toBe(201);
  await hub.store.transaction(() => {
    for (const a of [a1, a2, a3, a4, b1, u1]) hub.store.addAlert(a);
  });
}, 90_000);

afterAll(() => hub?.close());

async function get(client: UploadClient, path: string) {
  const res = await client.get(path);
  return {
    status: res.status,
    type: res.headers['content-type'],
    body: res.json<Record<string, unknown>>(),
    text: Buffer.from(res.body).toString('utf8'),
  };
}

describe('GET /v1/alerts: the owner reads a reporter, not who raised the alert', () => {
  it('answers the alerts without raisedBy, and no client id, organisation or location anywhere', async () => {
    const res = await get(acme, '/v1/alerts');
    expect({ ...res, text: undefined }).toEqual({
      status: 200,
      type: JSON_TYPE,
      body: { alerts: [a4, a3, a2, a1].map((a) => ownerView(a, REFERENCE)) },
      text: undefined,
    });
    for (const secret of [P1, P2, P3].flatMap((p) => [p.clientId, p.org, p.location])) {
      expect(res.text).not.toContain(secret);
    }
    expect(res.text).not.toContain('raisedBy');
  });

  it('gives one reporter the same reference across alerts, and another reporter another', async () => {
    const { alerts } = (await get(acme, '/v1/alerts')).body as { alerts: { id: string; reporter: string }[] };
    const ref = Object.fromEntries(alerts.map((a) => [a.id, a.reporter]));
    expect(ref.a1).toBe(ref.a3);
    expect(new Set([ref.a1, ref.a2, ref.a4]).size).toBe(3);
  });

  it('gives the same reporter another reference for each owner', async () => {
    const acmeRef = (
      (await get(acme, '/v1/alerts')).body as { alerts: { id: string; reporter: string }[] }
    ).alerts.find((a) => a.id === 'a1')!.reporter;
    const res = await get(beta, '/v1/alerts');
    expect(res.body).toEqual({ alerts: [ownerView(b1, REFERENCE)] });
    const betaRef = (res.body as { alerts: { reporter: string }[] }).alerts[0]!.reporter;
    expect(betaRef).not.toBe(acmeRef);
  });
});

describe('GET /v1/market-alerts: the verification organisation of the market reads who raised them', () => {
  it("answers its market's alerts of every owner, unknown products included, newest first, with raisedBy", async () => {
    expect(await get(nmvoDe, '/v1/market-alerts?market=DE')).toEqual({
      status: 200,
      type: JSON_TYPE,
      body: { alerts: [u1, b1, a3, a2, a1] },
      text: expect.any(String),
    });
    expect((await get(nmvoFr, '/v1/market-alerts?market=FR')).body).toEqual({ alerts: [a4] });
  });

  it('pages as the owners do, with filters', async () => {
    const first = await get(nmvoDe, `/v1/market-alerts?market=DE&productCode=${A}&limit=2`);
    expect(first.body).toEqual({ alerts: [a3, a2], next: expect.any(String) });
    const second = await get(nmvoDe, `/v1/market-alerts?market=DE&productCode=${A}&limit=2&cursor=${first.body.next}`);
    expect(second.body).toEqual({ alerts: [a1] });
  });

  it("refuses another market's verification organisation with 403", async () => {
    expect(await get(nmvoFr, '/v1/market-alerts?market=DE')).toEqual({
      status: 403,
      type: PROBLEM,
      body: {
        type: 'https://packtrust.dev/problems/hub-market-not-yours',
        title: "A verification organisation reads only its own market's alerts",
        status: 403,
        code: 'HUB_MARKET_NOT_YOURS',
        detail: 'This certificate is for market FR, not DE',
      },
      text: expect.any(String),
    });
  });

  it("refuses a cursor of another market's pages", async () => {
    const fr = Buffer.from('FR|9999').toString('base64url');
    expect((await get(nmvoDe, `/v1/market-alerts?market=DE&cursor=${fr}`)).body).toEqual({
      type: 'https://packtrust.dev/problems/bad-request',
      title: 'The request is malformed',
      status: 400,
      code: 'BAD_REQUEST',
      detail: 'The cursor is not one of your alert pages; start again without it',
    });
  });

  it('refuses a manufacturer certificate with 403, and a verification organisation on the owners’ route', async () => {
    const refused = (profile: string, allowed: string) => ({
      status: 403,
      type: PROBLEM,
      body: {
        type: 'https://packtrust.dev/problems/hub-profile-not-allowed',
        title: 'This certificate profile may not use this API',
        status: 403,
        code: 'HUB_PROFILE_NOT_ALLOWED',
        detail: `A ${profile} certificate may not use this API (allowed: ${allowed})`,
      },
      text: expect.any(String),
    });
    expect(await get(acme, '/v1/market-alerts?market=DE')).toEqual(refused('manufacturer', 'verification-org'));
    expect(await get(nmvoDe, '/v1/alerts')).toEqual(refused('verification-org', 'manufacturer'));
  });
});
