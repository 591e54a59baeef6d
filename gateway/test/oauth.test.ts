import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  jwtVerify,
  SignJWT,
} from 'jose';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey, TokenClient, type TokenError } from '../../clients/token-client.ts';
import { ClientRegistry } from '../src/oauth/clients.ts';
import { startTestHub, type TestHub } from './fixtures.ts';

let hub: TestHub;
let registry: ClientRegistry;
let dispatcher: Agent;
let issuer: string;

beforeAll(async () => {
  hub = await startTestHub({
    perClient: { ratePerSecond: 0.5, burst: 7 },
    perAddress: { ratePerSecond: 1000, burst: 1000 },
  });
  registry = new ClientRegistry(hub.store);
  dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
  issuer = `${hub.hubUrl}/oauth`;
}, 60_000);
afterAll(async () => {
  await dispatcher?.close();
  await hub?.close();
});

async function jwks() {
  const res = await fetch(`${issuer}/jwks`, { dispatcher });
  return (await res.json()) as { keys: JWK[] };
}

async function pharmacy(market = 'DE') {
  const { privateJwk, jwks: publicJwks } = await generateClientKey();
  const { clientId } = await registry.add({
    market,
    role: 'pharmacy',
    location: 'LOC-1',
    org: 'APO-1',
    jwks: publicJwks,
  });
  return { clientId, privateJwk, client: new TokenClient({ issuer, clientId, privateJwk, ca: hub.t.ca.chainPem() }) };
}

async function tokenRequest(body: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(body).toString(),
  });
  return { status: res.status, json: (await res.json()) as Record<string, string> };
}

async function assertion(clientId: string, jwk: JWK, overrides: { jti?: string; exp?: number } = {}) {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(`${issuer}/token`)
    .setJti(overrides.jti ?? crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime(overrides.exp ?? Math.floor(Date.now() / 1000) + 60)
    .sign(await importJWK(jwk, 'ES256'));
}

describe('OAuth provider', () => {
  it('publishes its RFC 8414 metadata, and no OpenID discovery document listing what it does not offer', async () => {
    const res = await fetch(`${hub.hubUrl}/.well-known/oauth-authorization-server/oauth`, { dispatcher });
    const meta = (await res.json()) as Record<string, unknown>;
    expect(meta).toMatchObject({ issuer, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` });
    expect(meta.grant_types_supported).toEqual(['client_credentials']);
    expect(meta.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['private_key_jwt', 'client_secret_basic']),
    );
    // oidc-provider's document would list an authorization endpoint, userinfo, claims: none works here.
    const discovery = await fetch(`${issuer}/.well-known/openid-configuration`, { dispatcher });
    expect(discovery.status).toBe(404);
    expect(((await discovery.json()) as { detail: string }).detail).toContain(
      'its metadata is at /.well-known/oauth-authorization-server/oauth (RFC 8414)',
    );
  });

  it('issues bearer tokens only: a DPoP proof (RFC 9449) binds nothing, as the nodes check none', async () => {
    const { clientId, privateJwk } = await pharmacy('DE');
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const proof = await new SignJWT({ htm: 'POST', htu: `${issuer}/token` })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(publicKey) })
      .setIssuedAt()
      .setJti(crypto.randomUUID())
      .sign(privateKey);
    const res = await tokenRequest(
      {
        grant_type: 'client_credentials',
        scope: 'verify',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await assertion(clientId, privateJwk),
      },
      { dpop: proof },
    );
    expect(res.status).toBe(200);
    expect(res.json.token_type).toBe('Bearer');
    expect(decodeJwt(res.json.access_token!)).not.toHaveProperty('cnf');
    const meta = (await (
      await fetch(`${hub.hubUrl}/.well-known/oauth-authorization-server/oauth`, { dispatcher })
    ).json()) as object;
    expect(meta).not.toHaveProperty('dpop_signing_alg_values_supported');
  });

  it('issues an RFC 9068 JWT for its market to a private_key_jwt client, verifiable with the JWKS', async () => {
    const { clientId, client } = await pharmacy('DE');
    const { accessToken } = await client.token();
    const { payload, protectedHeader } = await jwtVerify(accessToken, createLocalJWKSet(await jwks()), {
      issuer,
      audience: 'urn:packtrust:verifier:DE',
      typ: 'at+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({
      client_id: clientId,
      sub: clientId,
      org: 'APO-1',
      location: 'LOC-1',
      role: 'pharmacy',
      market: 'DE',
      scope: 'verify',
    });
    expect(payload.exp! - payload.iat!).toBe(600);
    // cached until shortly before expiry
    expect((await client.token()).accessToken).toBe(accessToken);
    await client.close();
  });

  it('issues tokens to a client_secret_post client', async () => {
    const { clientId, clientSecret } = await registry.add({
      market: 'DE',
      role: 'parallel-distributor',
      location: 'P-1',
      org: 'PD-1',
      secret: true,
      secretMethod: 'post',
    });
    const ok = await tokenRequest({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret!,
    });
    expect(ok.status).toBe(200);
    const wrong = await tokenRequest({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: 'not-the-secret',
    });
    expect(wrong).toEqual({
      status: 401,
      json: { error: 'invalid_client', error_description: 'client authentication failed' },
    });
  });

  it('stores no client secret, only its hash: what a stolen store holds authenticates no one', async () => {
    const { clientId, clientSecret } = await registry.add({
      market: 'DE',
      role: 'wholesaler',
      location: 'W-2',
      org: 'GROSS-2',
      secret: true,
      secretMethod: 'post',
    });
    const stored = () =>
      hub.store.store.db<{ payload: Record<string, unknown> }, string>('oauth-Client').get(clientId)!;
    const record = JSON.stringify(stored());
    expect(record).not.toContain(clientSecret!);
    expect(record).not.toContain(Buffer.from(clientSecret!, 'base64url').toString('hex'));
    const kept = String(stored().payload.client_secret);
    const attempt = (secret: string) =>
      tokenRequest({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret });
    expect(await attempt(kept)).toEqual({
      status: 401,
      json: { error: 'invalid_client', error_description: 'client authentication failed' },
    });
    expect((await attempt(clientSecret!)).status).toBe(200);
    // A new secret is shown once and stored as a hash too; the old one stops working.
    const rotated = await registry.rotateSecret(clientId);
    expect(JSON.stringify(stored())).not.toContain(rotated);
    expect((await attempt(clientSecret!)).status).toBe(401);
    expect((await attempt(rotated)).status).toBe(200);
  });

  it('issues tokens to a client_secret_basic client', async () => {
    const { clientId, clientSecret } = await registry.add({
      market: 'FR',
      role: 'wholesaler',
      location: 'W-1',
      org: 'GROSS-1',
      secret: true,
    });
    const client = new TokenClient({ issuer, clientId, clientSecret: clientSecret!, ca: hub.t.ca.chainPem() });
    const { payload } = await jwtVerify((await client.token()).accessToken, createLocalJWKSet(await jwks()), {
      audience: 'urn:packtrust:verifier:FR',
    });
    expect(payload.role).toBe('wholesaler');
    const rotated = await registry.rotateSecret(clientId);
    await expect(
      new TokenClient({ issuer, clientId, clientSecret: clientSecret!, ca: hub.t.ca.chainPem() }).token(),
    ).rejects.toMatchObject({ error: 'invalid_client' });
    expect(
      (await new TokenClient({ issuer, clientId, clientSecret: rotated, ca: hub.t.ca.chainPem() }).token()).accessToken,
    ).toBeTruthy();
  });

  it('refuses a wrong key, an unknown client, an expired or replayed assertion, another market, and a disabled client', async () => {
    const { clientId, privateJwk } = await pharmacy('DE');
    const other = await generateClientKey();
    const base = {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    };
    const wrongKey = await tokenRequest({ ...base, client_assertion: await assertion(clientId, other.privateJwk) });
    expect(wrongKey).toMatchObject({ status: 401, json: { error: 'invalid_client' } });
    const unknown = await tokenRequest({
      ...base,
      client_assertion: await assertion('de-pharmacy-unknown', privateJwk),
    });
    expect(unknown.json.error).toBe('invalid_client');
    const expired = await tokenRequest({
      ...base,
      client_assertion: await assertion(clientId, privateJwk, { exp: Math.floor(Date.now() / 1000) - 120 }),
    });
    expect(expired.json.error).toBe('invalid_client');
    const once = await assertion(clientId, privateJwk, { jti: 'same-jti-twice' });
    expect((await tokenRequest({ ...base, client_assertion: once })).status).toBe(200);
    const replay = await tokenRequest({ ...base, client_assertion: once });
    expect(replay.json).toMatchObject({ error: 'invalid_client' });
    // The audit entry is written after the answer; give it a moment.
    const audited = () =>
      [...hub.oauth.audit.entries()].some(
        (e) => e.body.event === 'auth-failed' && /only be used once/.test(e.body.description ?? ''),
      );
    for (let i = 0; i < 50 && !audited(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(audited()).toBe(true);
    const market = await tokenRequest({
      ...base,
      client_assertion: await assertion(clientId, privateJwk),
      resource: 'urn:packtrust:verifier:FR',
    });
    expect(market.json.error).toBe('invalid_target');
    await registry.disable(clientId);
    const disabled = await tokenRequest({ ...base, client_assertion: await assertion(clientId, privateJwk) });
    expect(disabled.json).toMatchObject({ error: 'invalid_client' });
    const failures = [...hub.oauth.audit.entries()].map((e) => e.body).filter((r) => r.event === 'auth-failed');
    expect(failures.length).toBeGreaterThanOrEqual(5);
  });

  it('refuses a client assertion that lives longer than 5 minutes, whose replay record would be kept as long', async () => {
    const { clientId, privateJwk } = await pharmacy();
    const res = await tokenRequest({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(clientId, privateJwk, { exp: Math.floor(Date.now() / 1000) + 365 * 86_400 }),
    });
    expect(res).toEqual({
      status: 401,
      json: { error: 'invalid_client', error_description: 'client authentication failed' },
    });
    const replays = [...hub.store.store.db<{ expiresAt?: number }, string>('oauth-ReplayDetection').getRange()];
    expect(replays.every((r) => (r.value.expiresAt ?? 0) < Date.now() + 10 * 60_000)).toBe(true);
  });

  it('reads no large body before anyone is authenticated: 413 past 64 KiB', async () => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&pad=${'x'.repeat(70 * 1024)}`,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('rate-limits the token endpoint per client, with 429 and an audit entry', async () => {
    const { client } = await pharmacy('AT');
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const c = new TokenClient({
        ...(client as unknown as { options: ConstructorParameters<typeof TokenClient>[0] }).options,
      });
      try {
        await c.token();
        statuses.push(200);
      } catch (err) {
        statuses.push((err as TokenError).status);
      }
    }
    expect(statuses.filter((s) => s === 200).length).toBe(7);
    expect(statuses).toContain(429);
    expect([...hub.oauth.audit.entries()].some((e) => e.body.event === 'rate-limited')).toBe(true);
  });

  it('limits failures naming a client per source: a flood from one address gets that address 429, and the client keeps getting tokens', async () => {
    const { clientId, client } = await pharmacy('DE');
    const thief = await generateClientKey();
    // Another source address on this machine: the flood comes from 127.0.0.2.
    const elsewhere = new Agent({ localAddress: '127.0.0.2', connect: { ca: hub.t.ca.chainPem() } });
    const answers: { status: number; type: string | null; body: unknown }[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const res = await fetch(`${issuer}/token`, {
          method: 'POST',
          dispatcher: elsewhere,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: await assertion(clientId, thief.privateJwk),
          }).toString(),
        });
        answers.push({ status: res.status, type: res.headers.get('content-type'), body: await res.json() });
      }
    } finally {
      await elsewhere.close();
    }
    // The per-client burst (7) of failures from that address, then 429 for that address.
    expect(answers.map((a) => a.status)).toEqual([...Array(7).fill(401), ...Array(3).fill(429)]);
    expect(answers[7]).toEqual({
      status: 429,
      type: 'application/json; charset=utf-8',
      body: {
        error: 'invalid_request',
        error_description: `too many failed token requests for client ${clientId} from 127.0.0.2`,
      },
    });
    // The client itself, from its own address, is not locked out by what others sent in its name.
    const { accessToken } = await client.token();
    expect(accessToken).toMatch(/^ey/);
    await client.close();
  });

  it('keeps no rate-limit bucket for a client id no one registered: it counts against its address only', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 9; i++) {
      const res = await tokenRequest({ grant_type: 'client_credentials', client_id: 'made-up', client_secret: 'x' });
      statuses.push(res.status);
    }
    expect(statuses).toEqual(Array(9).fill(401));
  });

  it('rotates signing keys: old tokens stay valid against the JWKS, new ones use the new key', async () => {
    const { client } = await pharmacy('DE');
    const before = (await client.token()).accessToken;
    const oldKid = decodeProtectedHeader(before).kid;
    const newKid = await hub.keys.rotate();
    const set = await jwks();
    expect(set.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
    await expect(
      jwtVerify(before, createLocalJWKSet(set), { audience: 'urn:packtrust:verifier:DE' }),
    ).resolves.toBeTruthy();
    const fresh = new TokenClient({
      ...(client as unknown as { options: ConstructorParameters<typeof TokenClient>[0] }).options,
    });
    const after = (await fresh.token()).accessToken;
    expect(decodeProtectedHeader(after).kid).toBe(newKid);
  });

  it('hashes, at start, a secret that a registration made before kept in clear; its client keeps it', async () => {
    const { clientId, clientSecret } = await registry.add({
      market: 'DE',
      role: 'wholesaler',
      location: 'W-3',
      org: 'GROSS-3',
      secret: true,
      secretMethod: 'post',
    });
    const clients = () => hub.store.store.db<{ payload: Record<string, unknown> }, string>('oauth-Client');
    // As such a registration stored it.
    await hub.store.store.transaction(() =>
      clients().putSync(clientId, {
        ...clients().get(clientId)!,
        payload: { ...clients().get(clientId)!.payload, client_secret: clientSecret },
      }),
    );
    await hub.restart();
    registry = new ClientRegistry(hub.store);
    expect(JSON.stringify(clients().get(clientId))).not.toContain(clientSecret!);
    const res = await tokenRequest({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret!,
    });
    expect(res.status).toBe(200);
  });

  it('keeps clients, signing keys and replay records across a restart', async () => {
    const { clientId, privateJwk, client } = await pharmacy('DE');
    const token = (await client.token()).accessToken;
    const used = await assertion(clientId, privateJwk, { jti: 'used-before-restart' });
    const base = {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    };
    expect((await tokenRequest({ ...base, client_assertion: used })).status).toBe(200);
    await client.close();

    await hub.restart();
    registry = new ClientRegistry(hub.store);
    expect(hub.oauth.issuer).toBe(issuer);
    await expect(
      jwtVerify(token, createLocalJWKSet(await jwks()), { issuer, audience: 'urn:packtrust:verifier:DE' }),
    ).resolves.toBeTruthy();
    expect((await tokenRequest({ ...base, client_assertion: await assertion(clientId, privateJwk) })).status).toBe(200);
    expect((await tokenRequest({ ...base, client_assertion: used })).json.error).toBe('invalid_client');
  });

  it('offers no introspection or revocation, which could do nothing with its JWT access tokens', async () => {
    const { clientId, privateJwk, client } = await pharmacy('DE');
    const token = (await client.token()).accessToken;
    for (const path of ['/token/introspection', '/token/revocation']) {
      const res = await fetch(`${issuer}${path}`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token,
          client_id: clientId,
          client_assertion: await assertion(clientId, privateJwk),
        }),
      });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    // The token still works: nothing was revoked, and nothing could have been.
    await expect(
      jwtVerify(token, createLocalJWKSet(await jwks()), { issuer, audience: 'urn:packtrust:verifier:DE' }),
    ).resolves.toBeTruthy();
    await client.close();
  });
});
