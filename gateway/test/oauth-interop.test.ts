import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose';
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
    // RFC 8414 discovery (oauth4webapi's `oauth2` algorithm): the hub is no OpenID provider.
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oauth2' }),
    );
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

describe('authorization server metadata (RFC 8414)', () => {
  const options = () => ({
    [oauth.customFetch]: (url: string, init: RequestInit) =>
      undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher }) as unknown as Promise<Response>,
  });

  it('is served where RFC 8414 §3.1 puts it for the issuer <hub>/oauth, listing only what works', async () => {
    const res = await undiciFetch(`${hub.hubUrl}/.well-known/oauth-authorization-server/oauth`, { dispatcher });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const issuer = `${hub.hubUrl}/oauth`;
    expect(await res.json()).toEqual({
      issuer,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      grant_types_supported: ['client_credentials'],
      response_types_supported: [],
      scopes_supported: ['verify'],
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post'],
      token_endpoint_auth_signing_alg_values_supported: ['ES256', 'PS256', 'RS256', 'EdDSA', 'Ed25519'],
    });
  });

  it('lets a strict client (oauth4webapi, algorithm oauth2) discover the issuer and get a token with every advertised method and algorithm', async () => {
    const issuer = new URL(hub.oauth.issuer);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { ...options(), algorithm: 'oauth2' }),
    );
    const set = (await (await undiciFetch(as.jwks_uri!, { dispatcher })).json()) as Parameters<
      typeof createLocalJWKSet
    >[0];
    /** A token through the metadata's endpoint, verified with the metadata's issuer and key set. */
    const grant = async (clientId: string, auth: oauth.ClientAuth) => {
      const response = await oauth.clientCredentialsGrantRequest(
        as,
        { client_id: clientId },
        auth,
        { scope: as.scopes_supported![0]! },
        options(),
      );
      const result = await oauth.processClientCredentialsResponse(as, { client_id: clientId }, response);
      const { payload } = await jwtVerify(result.access_token, createLocalJWKSet(set), {
        issuer: as.issuer,
        audience: 'urn:packtrust:verifier:DE',
      });
      return payload.client_id;
    };
    const registry = new ClientRegistry(hub.store);
    const register = (
      extra: { jwks: { keys: Record<string, unknown>[] } } | { secret: true; secretMethod: 'basic' | 'post' },
    ) => registry.add({ market: 'DE', role: 'pharmacy', location: 'MD-1', org: 'APO-MD', ...extra });
    const worked: string[] = [];
    for (const method of as.token_endpoint_auth_methods_supported!) {
      if (method === 'private_key_jwt') {
        for (const alg of as.token_endpoint_auth_signing_alg_values_supported!) {
          const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
          const pub = await exportJWK(publicKey);
          const kid = await calculateJwkThumbprint(pub);
          const { clientId } = await register({ jwks: { keys: [{ ...pub, kid, alg, use: 'sig' }] } });
          const auth = oauth.PrivateKeyJwt(
            { key: privateKey, kid },
            {
              [oauth.modifyAssertion]: (header) => {
                header.alg = alg;
              },
            },
          );
          expect(await grant(clientId, auth)).toBe(clientId);
          worked.push(`${method} ${alg}`);
        }
      } else {
        const secretMethod = method === 'client_secret_basic' ? 'basic' : 'post';
        const { clientId, clientSecret } = await register({ secret: true, secretMethod });
        const auth =
          secretMethod === 'basic' ? oauth.ClientSecretBasic(clientSecret!) : oauth.ClientSecretPost(clientSecret!);
        expect(await grant(clientId, auth)).toBe(clientId);
        worked.push(method);
      }
    }
    expect(worked).toEqual([
      'private_key_jwt ES256',
      'private_key_jwt PS256',
      'private_key_jwt RS256',
      'private_key_jwt EdDSA',
      'private_key_jwt Ed25519',
      'client_secret_basic',
      'client_secret_post',
    ]);
  });
});
