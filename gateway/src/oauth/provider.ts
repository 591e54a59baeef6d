import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import Provider, { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { type ChainEntry, HashChain } from '../../../common/src/hash-chain.ts';
import type { Logger } from '../../../common/src/log.ts';
import type { Store } from '../../../common/src/store.ts';
import { lmdbAdapterFactory } from './adapter.ts';
import { RateLimiter } from './rate-limit.ts';
import type { SigningKeys } from './signing-keys.ts';

export const OAUTH_PREFIX = '/oauth';

export interface OAuthOptions {
  /** `https://hub.example:8443/oauth` */
  issuer: string;
  /** The markets the hub serves: a client of any other market gets no token. */
  markets: ReadonlySet<string>;
  /** The verifier API of a market: the access token's audience and the `resource` a client asks for. */
  audienceTemplate: string;
  tokenTtlSeconds: number;
  perClient: { ratePerSecond: number; burst: number };
  perAddress: { ratePerSecond: number; burst: number };
  cookieKeys: string[];
  keys: SigningKeys;
  store: Store;
  logger: Logger;
}

export interface OAuthAuditRecord {
  time: string;
  event: 'auth-failed' | 'rate-limited' | 'token-issued-error';
  clientId?: string;
  address: string;
  error: string;
  description?: string;
}

const MARKET = 'urn:packtrust:market';
const EXTRA = [MARKET, 'urn:packtrust:role', 'urn:packtrust:location', 'urn:packtrust:org', 'urn:packtrust:created_at'];

/**
 * The OAuth 2.0 provider for pharmacies, hospitals and wholesalers: oidc-provider with the client
 * credentials grant only, private_key_jwt (or a client secret, per client), JWT access tokens
 * (RFC 9068) whose audience is the verifier API of the client's market, persisted on LMDB.
 * Mounted under /oauth on the gateway's listener (one TLS endpoint and certificate for the hub;
 * the listener asks for client certificates but does not require them).
 */
export class OAuthService {
  private provider: Provider | undefined;
  private providerKeysVersion = -1;
  private readonly byClient: RateLimiter;
  private readonly byAddress: RateLimiter;
  readonly audit: HashChain<OAuthAuditRecord>;

  constructor(private readonly options: OAuthOptions) {
    this.byClient = new RateLimiter(options.perClient.ratePerSecond, options.perClient.burst);
    this.byAddress = new RateLimiter(options.perAddress.ratePerSecond, options.perAddress.burst);
    this.audit = new HashChain(options.store.db<ChainEntry<OAuthAuditRecord>, number>('oauth-audit'));
  }

  /** For listeners on port 0 (tests): the issuer is known once the port is. */
  setIssuer(issuer: string): void {
    this.options.issuer = issuer;
    this.provider = undefined;
  }

  get issuer(): string {
    return this.options.issuer;
  }

  audience(market: string): string {
    return this.options.audienceTemplate.replace('{market}', market);
  }

  /** fastify handler for every path under /oauth. */
  handle = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const raw = request.raw as IncomingMessage & { originalUrl?: string; body?: unknown };
    const path = (raw.url ?? '/').slice(OAUTH_PREFIX.length) || '/';
    if (path.startsWith('/token') && request.method === 'POST' && !path.startsWith('/token/')) {
      const limited = await this.rateLimit(request);
      if (limited) {
        reply.code(429).header('retry-after', '1').send({ error: 'invalid_request', error_description: limited });
        return;
      }
    }
    const provider = await this.current();
    reply.hijack();
    raw.originalUrl = raw.url;
    raw.url = path;
    // fastify has read the body already; oidc-provider then parses req.body itself.
    if (Buffer.isBuffer(request.body)) raw.body = request.body;
    provider.callback()(raw, reply.raw);
  };

  private async current(): Promise<Provider> {
    const version = this.options.keys.version();
    if (!this.provider || version !== this.providerKeysVersion) {
      this.provider = this.build();
      this.providerKeysVersion = version;
    }
    return this.provider;
  }

  private build(): Provider {
    const o = this.options;
    const marketOf = (client: { metadata(): Record<string, unknown> } | undefined) =>
      String(client?.metadata()[MARKET] ?? '');
    const provider = new Provider(o.issuer, {
      adapter: lmdbAdapterFactory(o.store),
      clients: [],
      jwks: { keys: o.keys.privateJwks(o.tokenTtlSeconds) as never[] },
      cookies: { keys: o.cookieKeys },
      clientAuthMethods: ['private_key_jwt', 'client_secret_basic', 'client_secret_post'],
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
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: async (_ctx, client) => this.audience(marketOf(client)),
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx, resource, client) => {
            if (!o.markets.has(marketOf(client))) {
              throw new errors.InvalidClient(`the client's market ${marketOf(client)} is not served by this hub`);
            }
            if (resource !== this.audience(marketOf(client))) {
              throw new errors.InvalidTarget(`this client may only ask for ${this.audience(marketOf(client))}`);
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
      routes: {
        token: '/token',
        jwks: '/jwks',
        introspection: '/token/introspection',
        revocation: '/token/revocation',
      },
    });
    provider.on('grant.error', (ctx: KoaContextWithOIDC, error: errors.OIDCProviderError) =>
      this.recordFailure(ctx, error),
    );
    provider.on('server_error', (_ctx: KoaContextWithOIDC, error: Error) =>
      o.logger.error({ err: error }, 'oauth server error'),
    );
    return provider;
  }

  private recordFailure(ctx: KoaContextWithOIDC, error: errors.OIDCProviderError): void {
    const record: OAuthAuditRecord = {
      time: new Date().toISOString(),
      event: 'auth-failed',
      clientId: ctx.oidc?.client?.clientId ?? String(ctx.oidc?.params?.client_id ?? '') ?? undefined,
      address: ctx.ip,
      error: error.error ?? error.name,
      // error_detail says why (for example a replayed assertion); clients only see the generic description.
      ...((error.error_detail ?? error.error_description)
        ? { description: error.error_detail ?? error.error_description }
        : {}),
    };
    this.options.store
      .transaction(() => this.audit.append(record))
      .catch((err: unknown) => this.options.logger.error({ err }, 'oauth audit failed'));
  }

  /** Limits token requests per source address and per client; returns why when refused. */
  private async rateLimit(request: FastifyRequest): Promise<string | undefined> {
    const address = request.ip;
    const clientId = clientIdOf(request);
    let why: string | undefined;
    if (!this.byAddress.take(`a:${address}`)) why = `too many token requests from ${address}`;
    else if (clientId && !this.byClient.take(`c:${clientId}`)) why = `too many token requests for client ${clientId}`;
    if (why) {
      await this.options.store.transaction(() =>
        this.audit.append({
          time: new Date().toISOString(),
          event: 'rate-limited',
          clientId,
          address,
          error: 'rate_limited',
          description: why,
        }),
      );
    }
    return why;
  }
}

/** The client a token request names, read before authentication (only to key the rate limit). */
function clientIdOf(request: FastifyRequest): string | undefined {
  const body = Buffer.isBuffer(request.body)
    ? new URLSearchParams(request.body.toString('utf8'))
    : new URLSearchParams();
  const direct = body.get('client_id');
  if (direct) return direct;
  const assertion = body.get('client_assertion');
  if (assertion) {
    try {
      const claims = decodeJwt(assertion);
      return typeof claims.iss === 'string' ? claims.iss : undefined;
    } catch {
      return undefined;
    }
  }
  const auth = request.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    return decodeURIComponent(decoded.slice(0, Math.max(0, decoded.indexOf(':'))));
  }
  return undefined;
}
