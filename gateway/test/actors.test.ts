import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadClient } from '../../clients/upload-client.ts';
import { ActorProof, CLOCK_SKEW_MS } from '../src/actors.ts';
import { productJson, randomSerials, startTestHub, type TestHub } from './fixtures.ts';

/**
 * Least privilege inside the walls (ARCHITECTURE.md, "Who acted"): a verifier node holds a valid
 * certificate, but it relays what pharmacies did; it cannot vouch for anyone nor act outside its
 * market. Each attack here was reproduced against the earlier hub, which took the actor and the
 * time from the node's word. All through the real interfaces: mutual TLS and RFC 9421 signed
 * requests made with the attacking node's own certificate.
 */

const DE_ONLY = '09506000134352';
const BOTH = '09506000134369';
let hub: TestHub;
let frNode: UploadClient;
let serials: string[];
const tokens: Record<string, { token: string; clientId: string }> = {};

async function token(market: string, location: string) {
  const p = await hub.pharmacy(market, location);
  return { token: await p.token(), clientId: p.clientId };
}

const event = (over: Record<string, unknown>) => ({
  txId: `tx-${Math.random().toString(36).slice(2)}`,
  productCode: DE_ONLY,
  serial: serials[0],
  op: 'supply',
  at: Date.now(),
  token: tokens.fr!.token,
  ...over,
});
const send = (node: UploadClient, events: unknown[]) =>
  node.write('POST', '/v1/packs/events', JSON.stringify({ events }));
const evidenceCount = () => hub.store.evidence.last()?.seq ?? 0;
const feedLength = (market: string) => hub.store.feed(market).last()?.seq ?? 0;

beforeAll(async () => {
  hub = await startTestHub();
  await hub.registerPrefix('ACME', '9506000');
  const up = hub.client(await hub.credential('manufacturer', 'ACME'));
  serials = randomSerials(1000);
  for (const [code, markets] of [
    [DE_ONLY, ['DE']],
    [BOTH, ['DE', 'FR']],
  ] as const) {
    expect((await up.write('POST', '/v1/products', JSON.stringify(productJson(code, [...markets])))).status).toBe(201);
    const res = await up.write('POST', `/v1/products/${code}/batches/B1/packs?expiry=291200`, serials.join('\n'), {
      contentType: 'text/plain',
    });
    expect(res.status).toBe(201);
  }
  frNode = hub.client(await hub.credential('verifier-node', 'NMVO-FR', undefined, { market: 'FR' }));
  tokens.fr = await token('FR', 'FR-PHA-A');
  tokens.de = await token('DE', 'DE-APO-A');
}, 90_000);

afterAll(() => hub?.close());

/** The refusal answer, its evidence record, and that nothing else changed. */
async function refusedAndKept(res: Awaited<ReturnType<typeof send>>, code: string, detail: string) {
  const seq = evidenceCount();
  expect(res.status).toBe(403);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(res.json()).toEqual({
    type: `https://packtrust.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title: expect.any(String),
    status: 403,
    code,
    detail,
    evidence: { seq },
  });
  expect(res.receipt?.verified).toBe(true);
  expect(hub.store.evidence.record(seq)!.body).toMatchObject({ org: 'NMVO-FR', response: { status: 403 } });
}

describe('a node acts only for its own market', () => {
  it("refuses a FR node's supply of a pack sold only in DE, whatever token it carries; the pack stays active", async () => {
    const before = { de: feedLength('DE'), fr: feedLength('FR') };
    await refusedAndKept(
      await send(frNode, [event({})]),
      'HUB_WRONG_MARKET',
      `Product ${DE_ONLY} is not sold in FR, the market this node serves`,
    );
    // With a DE pharmacy's token it captured, the FR node is still only a FR node.
    await refusedAndKept(
      await send(frNode, [event({ productCode: BOTH, token: tokens.de!.token })]),
      'HUB_WRONG_MARKET',
      `This node serves FR; the access token is of a ${'DE'} client`,
    );
    expect(hub.store.packs.get(DE_ONLY + serials[0])).toEqual({ b: 'B1', s: 'ACTIVE' });
    expect(hub.store.packs.get(BOTH + serials[0])).toEqual({ b: 'B1', s: 'ACTIVE' });
    expect({ de: feedLength('DE'), fr: feedLength('FR') }).toEqual(before);
    expect(await hub.verifyEvidence()).toMatchObject({ ok: true, findings: [] });
  });

  it("cannot undo a DE pharmacy's supply in its name: the actor is the token's, and the token is DE's", async () => {
    const de = hub.client(await hub.credential('verifier-node', 'NMVO-DE', undefined, { market: 'DE' }));
    const supplied = await send(de, [event({ productCode: BOTH, serial: serials[1], token: tokens.de!.token })]);
    expect(supplied.json()).toMatchObject({ results: [{ accepted: true, state: 'SUPPLIED' }] });
    await refusedAndKept(
      await send(frNode, [event({ productCode: BOTH, serial: serials[1], op: 'undo', token: tokens.de!.token })]),
      'HUB_WRONG_MARKET',
      'This node serves FR; the access token is of a DE client',
    );
    // Its own pharmacy's token proves a FR client, which did not supply the pack.
    const own = await send(frNode, [event({ productCode: BOTH, serial: serials[1], op: 'undo' })]);
    expect(own.json()).toMatchObject({ results: [{ accepted: false, code: 'UNDO_OTHER_CLIENT' }] });
    expect(hub.store.packs.get(BOTH + serials[1])).toMatchObject({
      s: 'SUPPLIED',
      by: { clientId: tokens.de!.clientId, location: 'DE-APO-A' },
    });
  });

  it('refuses an event without a token or with a forged one, and the old fields that named the actor', async () => {
    const forged = `${tokens.fr!.token.slice(0, -8)}AAAAAAAA`;
    await refusedAndKept(
      await send(frNode, [event({ productCode: BOTH, token: forged })]),
      'HUB_ACTOR_UNPROVEN',
      'The access token is not accepted: the token signature does not verify',
    );
    const old = await send(frNode, [
      { ...event({ productCode: BOTH }), clientId: tokens.de!.clientId, org: 'X', role: 'pharmacy', location: 'X' },
    ]);
    expect(old.status).toBe(400);
    const { token: _t, ...noToken } = event({ productCode: BOTH });
    expect((await send(frNode, [noToken])).status).toBe(400);
  });
});

describe('the event time is bounded by the token', () => {
  it('refuses an event back-dated 11 days, which would move the undo window', async () => {
    const at = Date.now() - 11 * 86_400_000;
    const res = await send(frNode, [event({ productCode: BOTH, serial: serials[2], at })]);
    const { iat, exp } = JSON.parse(Buffer.from(tokens.fr!.token.split('.')[1]!, 'base64url').toString());
    await refusedAndKept(
      res,
      'HUB_EVENT_TIME_INVALID',
      `The event time ${new Date(at).toISOString()} is not inside its token's validity (${new Date(iat * 1000).toISOString()} to ${new Date(exp * 1000).toISOString()}) or is in the future`,
    );
    expect(hub.store.packs.get(BOTH + serials[2])).toEqual({ b: 'B1', s: 'ACTIVE' });
  });
});

describe('transaction ids belong to the client the token proves', () => {
  it("cannot pre-claim another market's client's transaction id", async () => {
    const txId = 'supply-0001';
    // The FR node claims the DE pharmacy's next transaction id, in both the old composed form and plain.
    for (const claimed of [`${tokens.de!.clientId}|${txId}`, txId]) {
      const res = await send(frNode, [event({ productCode: BOTH, serial: serials[3], txId: claimed, op: 'lock' })]);
      expect(res.status).toBe(200);
    }
    const de = hub.client(await hub.credential('verifier-node', 'NMVO-DE', undefined, { market: 'DE' }));
    const real = await send(de, [event({ productCode: BOTH, serial: serials[4], txId, token: tokens.de!.token })]);
    expect(real.json()).toMatchObject({ results: [{ txId, accepted: true, code: 'CHANGED', state: 'SUPPLIED' }] });
    expect(hub.store.packs.get(BOTH + serials[4])).toMatchObject({
      s: 'SUPPLIED',
      by: { clientId: tokens.de!.clientId },
    });
  });
});

describe('a transaction id answers one request', () => {
  it("does not answer another pack's request with a stored answer, nor let a node pre-claim a pharmacy's ids", async () => {
    const de = hub.client(await hub.credential('verifier-node', 'NMVO-DE', undefined, { market: 'DE' }));
    const txId = 'rx-1001';
    // A node that captured the pharmacy's token claims its next id with a serial that does not exist.
    const claimed = await send(de, [
      event({ productCode: BOTH, serial: 'NOSUCHSERIAL', txId, token: tokens.de!.token }),
    ]);
    expect(claimed.json()).toMatchObject({ results: [{ accepted: false, code: 'SERIAL_UNKNOWN' }] });
    // The pharmacy's real request with that id is not answered with the other pack's answer.
    const real = await send(de, [event({ productCode: BOTH, serial: serials[5], txId, token: tokens.de!.token })]);
    expect(real.json()).toMatchObject({
      results: [
        {
          txId,
          accepted: false,
          code: 'TX_ID_REUSED',
          detail: `transaction id ${txId} was used by this client for another request`,
        },
      ],
    });
    expect(hub.store.packs.get(BOTH + serials[5])).toEqual({ b: 'B1', s: 'ACTIVE' });
    // The same request again gets its first answer.
    const again = await send(de, [event({ productCode: BOTH, serial: 'NOSUCHSERIAL', txId, token: tokens.de!.token })]);
    expect(again.json()).toMatchObject({ results: [{ accepted: false, code: 'SERIAL_UNKNOWN' }] });
  });
});

describe('event times the hub cannot read', () => {
  it('refuses an alert dated with a leap second (a valid date-time no clock has), which once slipped past every time rule', async () => {
    const res = await frNode.write(
      'POST',
      '/v1/alerts',
      JSON.stringify({
        alerts: [
          {
            id: 'leap-1',
            code: 'A3',
            returnCode: 'SERIAL_UNKNOWN',
            detail: 'serial is not registered for this product',
            market: 'FR',
            nodeId: 'fr-1',
            pack: { productCode: BOTH, serial: 'INVENTED09', batch: 'B1', expiry: '291200' },
            raisedAt: '2020-01-01T23:59:60Z',
            token: tokens.fr!.token,
          },
        ],
      }),
    );
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ code: 'HUB_EVENT_TIME_INVALID' });
  });
});

describe('alerts name the client whose token made the scan', () => {
  const alert = (over: Record<string, unknown>) => ({
    id: `alert-${Math.random().toString(36).slice(2)}`,
    code: 'A3',
    returnCode: 'SERIAL_UNKNOWN',
    detail: 'serial is not registered for this product',
    market: 'FR',
    nodeId: 'fr-1',
    pack: { productCode: DE_ONLY, serial: 'INVENTED01', batch: 'B1', expiry: '291200' },
    raisedAt: new Date().toISOString(),
    token: tokens.fr!.token,
    ...over,
  });
  const postAlerts = (alerts: unknown[]) => frNode.write('POST', '/v1/alerts', JSON.stringify({ alerts }));
  const ownerAlerts = async () => {
    const owner = hub.client(await hub.credential('manufacturer', 'ACME'));
    return (await owner.get('/v1/alerts')).json<{ alerts: Record<string, unknown>[] }>().alerts;
  };

  it('refuses alerts for a product not sold in the node market, and an invented pharmacy; none reach the owner', async () => {
    await refusedAndKept(
      await postAlerts([alert({})]),
      'HUB_WRONG_MARKET',
      `Product ${DE_ONLY} is not sold in FR, the market this node serves`,
    );
    const invented = alert({
      pack: { productCode: BOTH, serial: 'INVENTED02', batch: 'B1', expiry: '291200' },
      raisedBy: { clientId: 'fr-pharmacy-invented', org: 'NOBODY', location: 'NOWHERE', role: 'pharmacy' },
    });
    expect((await postAlerts([invented])).status).toBe(400);
    expect(await ownerAlerts()).toEqual([]);
  });

  it('keeps an alert with raisedBy taken from the token', async () => {
    const a = alert({ pack: { productCode: BOTH, serial: 'INVENTED03', batch: 'B1', expiry: '291200' } });
    const res = await postAlerts([a]);
    expect(res.json()).toMatchObject({ stored: 1, duplicates: 0, refused: 0 });
    const { token: _t, ...rest } = a;
    const kept = {
      ...rest,
      raisedBy: { clientId: tokens.fr!.clientId, org: 'ORG-FR-PHA-A', location: 'FR-PHA-A', role: 'pharmacy' },
      receivedAt: expect.any(String),
      owner: 'ACME',
    };
    expect(hub.alertsOf('ACME')).toEqual([kept]);
    // The owner reads a reporter for it (alert-reporters.test.ts).
    const { raisedBy: _who, ...seen } = kept;
    expect(await ownerAlerts()).toEqual([{ ...seen, reporter: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) }]);
  });
});

describe('alerts of one client', () => {
  it('are kept up to a bound per proven client: 1,000 at once, the rest counted as limited; another client is not held up', async () => {
    const flood = await token('FR', 'FR-PHA-FLOOD');
    const calm = await token('FR', 'FR-PHA-CALM');
    const alerts = (n: number, who: { token: string }, prefix: string) =>
      Array.from({ length: n }, (_, i) => ({
        id: `${prefix}-${i}`,
        code: 'A3',
        returnCode: 'SERIAL_UNKNOWN',
        detail: 'serial is not registered for this product',
        market: 'FR',
        nodeId: 'fr-1',
        pack: { productCode: BOTH, serial: `FLOOD${i}`, batch: 'B1', expiry: '291200' },
        raisedAt: new Date().toISOString(),
        token: who.token,
      }));
    const post = async (list: unknown[]) =>
      (await frNode.write('POST', '/v1/alerts', JSON.stringify({ alerts: list }))).json<Record<string, unknown>>();
    expect(await post(alerts(1000, flood, 'flood-a'))).toMatchObject({ stored: 1000, limited: 0 });
    // Within the same seconds: a bucket of 1,000 refills at 10 a second.
    const second = await post([...alerts(200, flood, 'flood-b'), ...alerts(1, calm, 'calm')]);
    expect(second).toMatchObject({ refused: 0, duplicates: 0 });
    expect((second.stored as number) + (second.limited as number)).toBe(201);
    expect(second.stored).toBeLessThan(100);
    const kept = hub.alertsOf('ACME');
    expect(kept.filter((a) => a.raisedBy.clientId === calm.clientId)).toHaveLength(1);
    // Of the second request's stored alerts, one is the calm client's.
    expect(kept.filter((a) => a.raisedBy.clientId === flood.clientId)).toHaveLength(
      1000 + (second.stored as number) - 1,
    );
  }, 60_000);
});

describe('ActorProof (the rules, with keys of our own)', () => {
  let signing: { privateKey: CryptoKey; jwk: JWK };
  const issuer = 'https://hub.test/oauth';
  const disabled = new Map<string, number>();
  let proof: ActorProof;
  const T0 = 1_800_000_000_000;

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    signing = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' } };
    proof = new ActorProof({
      issuer: () => issuer,
      audience: (m) => `urn:packtrust:verifier:${m}`,
      keys: { publicJwks: () => [signing.jwk], keySetTag: () => 'k1' },
      offlineWindowSeconds: 3600,
      disabledSince: (id) => disabled.get(id),
    });
  });

  const mint = (claims: Record<string, unknown> = {}, iat = T0 / 1000, ttl = 600, aud = 'urn:packtrust:verifier:FR') =>
    new SignJWT({
      client_id: 'c1',
      org: 'O1',
      location: 'L1',
      role: 'pharmacy',
      market: 'FR',
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(aud)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl)
      .sign(signing.privateKey);

  it('takes the actor from the token', async () => {
    const { actor, refusal } = await proof.prove(await mint(), { market: 'FR' }, T0 + 1000, T0 + 2000);
    expect(refusal).toBeUndefined();
    expect(actor).toMatchObject({ clientId: 'c1', org: 'O1', location: 'L1', role: 'pharmacy', market: 'FR' });
  });

  it('bounds the event time by the token validity and the clock skew', async () => {
    const t = await mint();
    await expect(proof.prove(t, { market: 'FR' }, T0 - CLOCK_SKEW_MS - 1, T0)).rejects.toMatchObject({
      code: 'HUB_EVENT_TIME_INVALID',
    });
    await expect(
      proof.prove(t, { market: 'FR' }, T0 + 600_000 + CLOCK_SKEW_MS + 1, T0 + 700_000),
    ).rejects.toMatchObject({ code: 'HUB_EVENT_TIME_INVALID' });
    await expect(proof.prove(t, { market: 'FR' }, T0 + 500_000, T0 + 100_000)).rejects.toMatchObject({
      code: 'HUB_EVENT_TIME_INVALID',
    });
    expect((await proof.prove(t, { market: 'FR' }, T0 + 599_000, T0 + 600_000)).refusal).toBeUndefined();
  });

  it('accepts a queued event until the offline window after its token expired, then refuses that event alone', async () => {
    const t = await mint();
    const expired = T0 + 600_000;
    expect((await proof.prove(t, { market: 'FR' }, T0 + 1000, expired + 3_600_000)).refusal).toBeUndefined();
    expect((await proof.prove(t, { market: 'FR' }, T0 + 1000, expired + 3_600_001)).refusal).toEqual({
      code: 'OFFLINE_WINDOW_PASSED',
      detail: 'the event reached the hub more than 3600 s after its access token expired',
    });
  });

  it('refuses events a disabled client made after it was disabled, not before', async () => {
    const t = await mint({ client_id: 'c2' });
    disabled.set('c2', T0 + 5000);
    expect((await proof.prove(t, { market: 'FR' }, T0 + 4000, T0 + 6000)).refusal).toBeUndefined();
    expect((await proof.prove(t, { market: 'FR' }, T0 + 5000, T0 + 6000)).refusal).toMatchObject({
      code: 'CLIENT_DISABLED',
    });
  });

  it('refuses another market, another audience, another issuer, and a token without the packtrust claims', async () => {
    await expect(proof.prove(await mint(), { market: 'DE' }, T0, T0)).rejects.toMatchObject({
      code: 'HUB_WRONG_MARKET',
      message: 'This node serves DE; the access token is of a FR client',
    });
    const otherAudience = await mint({}, T0 / 1000, 600, 'urn:packtrust:verifier:DE');
    await expect(proof.prove(otherAudience, { market: 'FR' }, T0, T0)).rejects.toMatchObject({
      code: 'HUB_ACTOR_UNPROVEN',
      message: "The access token is not accepted: the token's aud claim is not accepted here",
    });
    await expect(proof.prove(await mint({ role: 'manufacturer' }), { market: 'FR' }, T0, T0)).rejects.toMatchObject({
      code: 'HUB_ACTOR_UNPROVEN',
      message: 'The access token is not accepted: the token carries no packtrust role',
    });
    const otherIssuer = await new SignJWT({ client_id: 'c1', org: 'O', location: 'L', role: 'pharmacy', market: 'FR' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .setIssuer('https://elsewhere/oauth')
      .setAudience('urn:packtrust:verifier:FR')
      .setIssuedAt(T0 / 1000)
      .setExpirationTime(T0 / 1000 + 600)
      .sign(signing.privateKey);
    await expect(proof.prove(otherIssuer, { market: 'FR' }, T0, T0)).rejects.toMatchObject({
      code: 'HUB_ACTOR_UNPROVEN',
      message: "The access token is not accepted: the token's iss claim is not accepted here",
    });
  });
});
