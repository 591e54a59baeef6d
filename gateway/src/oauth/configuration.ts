import { type Configuration, errors } from 'oidc-provider';

/** The longest a client assertion (private_key_jwt) may live (RFC 7523 §3 leaves it to us). */
const MAX_ASSERTION_SECONDS = 300;

import type { Store } from '../../../common/src/store.ts';
import { lmdbAdapterFactory } from './adapter.ts';
import type { SigningKeys } from './signing-keys.ts';

/**
 * How clients authenticate at the token endpoint: private_key_jwt (RFC 7523) by default, or a
 * client secret per client (clients.ts). Advertised as is in the metadata (provider.ts).
 */
export const CLIENT_AUTH_METHODS = ['private_key_jwt', 'client_secret_basic', 'client_secret_post'] as const;

/**
 * The algorithms a client assertion may be signed with: those of the keys a client's JWKS may
 * hold (EC P-256, RSA, Ed25519). oidc-provider's default adds HS256, which only client_secret_jwt
 * uses, and that method is not offered.
 */
export const CLIENT_ASSERTION_ALGS = ['ES256', 'PS256', 'RS256', 'EdDSA', 'Ed25519'] as const;

/** The provider's endpoints, under the issuer's path (/oauth). */
export const ROUTES = {
  token: '/token',
  jwks: '/jwks',
} as const;

/** The client metadata onboarding staff write (clients.ts); the market decides the token's audience. */
const MARKET = 'urn:packtrust:market';
const EXTRA = [MARKET, 'urn:packtrust:role', 'urn:packtrust:location', 'urn:packtrust:org', 'urn:packtrust:created_at'];

interface ProviderSettings {
  /** The markets the hub serves: a client of any other market gets no token. */
  markets: ReadonlySet<string>;
  /** The verifier API of a market: the access token's audience and the only `resource` its clients may ask for. */
  audience(market: string): string;
  tokenTtlSeconds: number;
  cookieKeys: string[];
  keys: Pick<SigningKeys, 'privateJwks'>;
  store: Store;
  /** Told the name of each oidc-provider model the adapter stores (their databases are swept). */
  models: Set<string>;
}

/**
 * oidc-provider's configuration for the hub: the client credentials grant only, private_key_jwt
 * by default or a client secret per client, JWT access tokens (RFC 9068) through resource
 * indicators, with the audience of the client's market and its organisation, location, role and
 * market as claims (common/src/access-tokens.ts reads them), every model on LMDB (adapter.ts).
 */
export function providerConfiguration(o: ProviderSettings): Configuration {
  const marketOf = (client: { metadata(): Record<string, unknown> } | undefined) =>
    String(client?.metadata()[MARKET] ?? '');
  return {
    adapter: lmdbAdapterFactory(o.store, o.models),
    clients: [],
    jwks: { keys: o.keys.privateJwks() as never[] },
    cookies: { keys: o.cookieKeys },
    clientAuthMethods: [...CLIENT_AUTH_METHODS],
    enabledJWA: { clientAuthSigningAlgValues: [...CLIENT_ASSERTION_ALGS] },
    // A client assertion lives minutes, not years: the replay record of its `jti` is kept until it
    // expires, so a long-lived assertion would be a record kept for as long.
    assertJwtClientAuthClaimsAndHeader: async (_ctx, claims) => {
      const now = Math.floor(Date.now() / 1000);
      if (typeof claims.exp !== 'number' || claims.exp > now + MAX_ASSERTION_SECONDS) {
        throw new errors.InvalidClientAuth(`client assertions must expire within ${MAX_ASSERTION_SECONDS} s`);
      }
    },
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'private_key_jwt',
      // No ID tokens are issued (client credentials only), but the metadata must name an alg we hold.
      id_token_signed_response_alg: 'ES256',
    },
    extraClientMetadata: { properties: EXTRA },
    scopes: ['verify'],
    features: {
      devInteractions: { enabled: false },
      // Access tokens are bearer tokens: the verifier nodes check no DPoP proof, so a token bound
      // to a DPoP key (RFC 9449) would promise a client a protection it does not get there.
      dPoP: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      clientCredentials: { enabled: true },
      // Off: the only tokens the hub issues are JWTs, which oidc-provider does not keep, so both
      // would answer every token `unsupported_token_type`. A client is cut off by disabling it
      // (its tokens expire within their lifetime), not by revoking a token.
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, client) => o.audience(marketOf(client)),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource, client) => {
          if (!o.markets.has(marketOf(client))) {
            throw new errors.InvalidClient(`the client's market ${marketOf(client)} is not served by this hub`);
          }
          if (resource !== o.audience(marketOf(client))) {
            throw new errors.InvalidTarget(`this client may only ask for ${o.audience(marketOf(client))}`);
          }
          return {
            scope: 'verify',
            audience: resource,
            accessTokenTTL: o.tokenTtlSeconds,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    extraTokenClaims: async (ctx) => {
      const m: Record<string, unknown> = ctx.oidc.client?.metadata() ?? {};
      return {
        org: m['urn:packtrust:org'],
        location: m['urn:packtrust:location'],
        role: m['urn:packtrust:role'],
        market: m[MARKET],
      };
    },
    ttl: { ClientCredentials: o.tokenTtlSeconds },
    routes: { ...ROUTES },
  };
}
