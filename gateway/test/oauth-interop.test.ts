import { createLocalJWKSet, importJWK, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey } from '../../clients/token-client.ts';
import { ClientRegistry } from '../src/oauth/clients.ts';
import { startTestHub, type TestHub } from './fixtures.ts';

let hub: TestHub;
let dispatcher: Agent;

beforeAll(async () => {
  hub = await startTestHub();
  dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
}, 60_000);
afterAll(async () => {
  await dispatcher?.close();
  await hub?.close();
});

describe('an independent OAuth client (oauth4webapi)', () => {
  it('discovers the provider and obtains a JWT with private_key_jwt through the client credentials grant', async () => {
    const { privateJwk, jwks } = await generateClientKey();
    const { clientId } = await new ClientRegistry(hub.store).add({
      market: 'DE',
      role: 'hospital',
      location: 'H-7',
      org: 'KLINIK-1',
      jwks,
    });
    // The hub's certificate comes from the packtrust CA, so the client trusts that CA.
    const options = {
      [oauth.customFetch]: (url: string, init: RequestInit) =>
        undiciFetch(url, {
          ...(init as Parameters<typeof undiciFetch>[1]),
          dispatcher,
        }) as unknown as Promise<Response>,
    };
    const issuer = new URL(hub.oauth.issuer);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, options));
    const key = (await importJWK(privateJwk, 'ES256')) as CryptoKey;
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      { client_id: clientId },
      oauth.PrivateKeyJwt({ key, kid: privateJwk.kid }),
      { scope: 'verify', resource: 'urn:packtrust:verifier:DE' },
      options,
    );
    const result = await oauth.processClientCredentialsResponse(as, { client_id: clientId }, response);
    expect(result.token_type.toLowerCase()).toBe('bearer');
    const set = (await (await undiciFetch(as.jwks_uri!, { dispatcher })).json()) as Parameters<
      typeof createLocalJWKSet
    >[0];
    const { payload } = await jwtVerify(result.access_token, createLocalJWKSet(set), {
      issuer: as.issuer,
      audience: 'urn:packtrust:verifier:DE',
    });
    expect(payload).toMatchObject({ client_id: clientId, role: 'hospital', location: 'H-7' });
  });
});
