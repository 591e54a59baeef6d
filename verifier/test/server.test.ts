import { once } from 'node:events';
import { connect } from 'node:tls';
import { importJWK, SignJWT } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey } from '../../clients/token-client.ts';
import { encodeElementString } from '../../common/src/gs1.ts';
import { type Credential, productJson, randomSerials } from '../../gateway/test/fixtures.ts';
import { CODE, type NodeHarness, startNodeHarness } from './fixtures.ts';

let h: NodeHarness;
let maker: Credential;

const pharmacyToken = async (market: string): Promise<string> => (await h.hub.pharmacy(market, 'APO-1')).token();

beforeAll(async () => {
  h = await startNodeHarness({
    name: 'verifier',
    pharmacy: 'APO-1',
    seed: async (hub) => {
      maker = await hub.credential('manufacturer', 'ACME');
      await hub.registerPrefix('ACME', '9506000');
      const up = hub.client(maker);
      expect((await up.write('POST', '/v1/products', JSON.stringify(productJson(CODE, ['DE'])))).status).toBe(201);
      const serials = randomSerials(2000);
      expect(
        (
          await up.write('POST', `/v1/products/${CODE}/batches/B1/packs?expiry=291200`, serials.join('\n'), {
            contentType: 'text/plain',
          })
        ).status,
      ).toBe(201);
      expect(
        (
          await up.write('POST', `/v1/products/${CODE}/batches/RC/packs?expiry=291200`, randomSerials(10).join('\n'), {
            contentType: 'text/plain',
          })
        ).status,
      ).toBe(201);
      expect(
        (await up.write('POST', `/v1/products/${CODE}/batches/RC/recall`, JSON.stringify({ reason: 'contamination' })))
          .status,
      ).toBe(200);
      return serials;
    },
  });
}, 60_000);

afterAll(() => h?.close());

describe('verifier node pharmacy API', () => {
  it('verifies an active pack by its fields and by its Data Matrix content', async () => {
    const fields = { productCode: CODE, serial: h.serials[0], batch: 'B1', expiry: '291200' };
    expect(await h.call('/v1/packs/verify', fields)).toMatchObject({
      status: 200,
      json: { returnCode: 'ACTIVE', state: 'ACTIVE' },
    });
    const dm = `]d2${encodeElementString({ productCode: CODE, serial: h.serials[1]!, batch: 'B1', expiry: '291200' })}`;
    expect((await h.call('/v1/packs/verify', { dataMatrix: dm })).json).toMatchObject({
      returnCode: 'ACTIVE',
      serial: h.serials[1],
    });
    expect((await h.call('/v1/packs/verify', { dataMatrix: '01123' })).json).toMatchObject({
      status: 400,
      code: 'NODE_DATA_MATRIX_INVALID',
    });
  });

  it('answers a recalled batch with its reason and no alert', async () => {
    const rc = [...h.hub.store.packs.getRange({ start: CODE, end: `${CODE}\uffff` })].find((e) => e.value.b === 'RC')!;
    const res = await h.call('/v1/packs/verify', {
      productCode: CODE,
      serial: rc.key.slice(14),
      batch: 'RC',
      expiry: '291200',
    });
    expect(res.json).toMatchObject({
      returnCode: 'INACTIVE',
      inactiveReason: 'RECALLED',
      detail: 'the batch is recalled: contamination',
    });
    expect(res.json.alert).toBeUndefined();
  });

  it('raises A3 for an unknown pack; the alert reaches the hub and only the owner reads it', async () => {
    const res = await h.call('/v1/packs/verify', {
      productCode: CODE,
      serial: 'FAKE0001',
      batch: 'B1',
      expiry: '291200',
    });
    expect(res.json).toMatchObject({ returnCode: 'SERIAL_UNKNOWN', alert: { code: 'A3' } });
    const id = (res.json.alert as { id: string }).id;
    const owner = h.hub.client(maker);
    let seen = false;
    for (let i = 0; i < 100 && !seen; i++) {
      const alerts = (await owner.get('/v1/alerts')).json<{ alerts: { id: string }[] }>().alerts;
      seen = alerts.some((a) => a.id === id);
      if (!seen) await new Promise((r) => setTimeout(r, 50));
    }
    expect(seen).toBe(true);
    const other = h.hub.client(await h.hub.credential('manufacturer', 'OTHER'));
    expect((await other.get('/v1/alerts')).json<{ alerts: unknown[] }>().alerts).toEqual([]);
    expect((await other.get(`/v1/alerts?productCode=${CODE}`)).status).toBe(403);
  });

  it('verifies a bulk request in order, with each alert at its own pack', async () => {
    // More packs than one slice of the bulk loop, unknown ones spread across the slices.
    const packs = h.serials
      .slice(0, 2000)
      .map((serial) => ({ productCode: CODE, serial, batch: 'B1', expiry: '291200' }));
    for (const i of [5, 999, 1000, 1999]) packs[i] = { ...packs[i]!, serial: `NOPE${i}` };
    const res = await h.call('/v1/packs/verify-bulk', { packs });
    const results = res.json.results as { returnCode: string; serial: string; alert?: { code: string } }[];
    expect(results).toHaveLength(2000);
    expect(results.map((r) => r.serial)).toEqual(packs.map((p) => p.serial));
    for (const [i, r] of results.entries()) {
      if ([5, 999, 1000, 1999].includes(i))
        expect(r).toMatchObject({ returnCode: 'SERIAL_UNKNOWN', alert: { code: 'A3' } });
      else expect(r.returnCode === 'ACTIVE' && r.alert === undefined).toBe(true);
    }
  });

  it('refuses a missing, foreign-market, tampered, unknown-key or expired token', async () => {
    const fields = { productCode: CODE, serial: h.serials[0], batch: 'B1', expiry: '291200' };
    expect((await h.call('/v1/packs/verify', fields, '')).json).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    const fr = await pharmacyToken('FR');
    expect((await h.call('/v1/packs/verify', fields, fr)).json).toMatchObject({
      status: 401,
      code: 'NODE_TOKEN_INVALID',
      detail: expect.stringContaining('aud'),
    });
    const [head, p, s] = h.token.split('.') as [string, string, string];
    const flipped = `${head}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    expect((await h.call('/v1/packs/verify', fields, flipped)).json).toMatchObject({
      status: 401,
      code: 'NODE_TOKEN_INVALID',
    });
    const foreignKey = (await generateClientKey()).privateJwk;
    const forged = await new SignJWT({ market: 'DE', role: 'pharmacy', org: 'X', location: 'Y' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: foreignKey.kid! })
      .setIssuer(h.hub.oauth.issuer)
      .setAudience('urn:packtrust:verifier:DE')
      .setExpirationTime('5m')
      .sign(await importJWK(foreignKey, 'ES256'));
    expect((await h.call('/v1/packs/verify', fields, forged)).json).toMatchObject({
      status: 401,
      code: 'NODE_TOKEN_INVALID',
    });
    const hubKey = h.hub.keys.privateJwks()[0]!;
    const expired = await new SignJWT({ market: 'DE', role: 'pharmacy', org: 'X', location: 'Y', client_id: 'c' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: hubKey.kid! })
      .setIssuer(h.hub.oauth.issuer)
      .setAudience('urn:packtrust:verifier:DE')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 1200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 600)
      .sign(await importJWK(hubKey, 'ES256'));
    expect((await h.call('/v1/packs/verify', fields, expired)).json).toMatchObject({
      status: 401,
      code: 'NODE_TOKEN_INVALID',
      detail: 'the token has expired',
    });
  });

  it('refuses a request without a valid token before reading its body', async () => {
    // A body of 3 MiB (under the 4 MiB limit) of which only the first KiB is sent: the answer
    // must come while the client is still sending, not after the whole body was read and parsed.
    const { hostname, port } = new URL(h.node.url);
    for (const authorization of [undefined, 'Bearer not-a-token']) {
      const socket = connect({
        host: hostname,
        port: Number(port),
        ca: h.hub.t.ca.chainPem(),
        servername: 'localhost',
      });
      await once(socket, 'secureConnect');
      socket.write(
        [
          'POST /v1/packs/verify-bulk HTTP/1.1',
          `host: ${hostname}:${port}`,
          'content-type: application/json',
          `content-length: ${3 * 1024 * 1024}`,
          ...(authorization ? [`authorization: ${authorization}`] : []),
          '',
          `{"packs":[${' '.repeat(1024)}`,
        ].join('\r\n'),
      );
      let answer = '';
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString();
      });
      // The answer's end (the problem document closes the body) while 3 MiB are still unsent.
      while (!answer.includes('}')) await once(socket, 'data');
      socket.destroy();
      const [head, body] = answer.split('\r\n\r\n') as [string, string];
      expect(head).toMatch(/^HTTP\/1\.1 401 /);
      expect(head.toLowerCase()).toContain('content-type: application/problem+json; charset=utf-8');
      expect(JSON.parse(body)).toEqual(
        authorization
          ? {
              type: 'https://packtrust.dev/problems/node-token-invalid',
              title: 'The access token is not valid for this verifier',
              status: 401,
              detail: expect.any(String),
              code: 'NODE_TOKEN_INVALID',
            }
          : {
              type: 'https://packtrust.dev/problems/unauthenticated',
              title: 'Authentication required',
              status: 401,
              detail: 'Send "Authorization: Bearer <access token>" from the packtrust OAuth provider',
              code: 'UNAUTHENTICATED',
            },
      );
    }
  }, 20_000);

  it('reports health and Prometheus metrics', async () => {
    const health = (await (await request(`${h.node.url}/health`, { dispatcher: h.dispatcher })).body.json()) as Record<
      string,
      unknown
    >;
    expect(health).toMatchObject({ status: 'following', serving: true, market: 'DE', nodeId: 'de-1', lag: 0 });
    expect(health.packs).toBe(2010);
    const metrics = await (await request(`${h.node.url}/metrics`, { dispatcher: h.dispatcher })).body.text();
    expect(metrics).toContain('packtrust_replica_packs{market="DE",node="de-1"} 2010');
  });
});
