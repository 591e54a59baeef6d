import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import Provider, { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { type ChainEntry, HashChain } from '../../../common/src/hash-chain.ts';
import type { Logger } from '../../../common/src/log.ts';
import { RefusalAudit } from '../../../common/src/refusal-audit.ts';
import type { Database, Store } from '../../../common/src/store.ts';
import { NotFound } from '../errors.ts';
import { lmdbAdapterFactory, removeExpiredEntries, type Stored } from './adapter.ts';
import { clientsDb } from './clients.ts';
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

/** A refused token request, as written in the `oauth-audit` log. */
export interface OAuthRefusal {
  time: string;
  event: 'auth-failed' | 'rate-limited';
  /** As the request named it (unauthenticated: any string, cut to 128 characters). */
  clientId?: string;
  address: string;
  error: string;
  description?: string;
}

/** A window's count of refusals, when more came than are written one by one (RefusalAudit). */
export interface OAuthRefusalSummary {
  time: string;
  event: 'refusals-counted';
  from: string;
  to: string;
  /** Per client and address: the first refusal's fields, how many came, how many are only counted here. */
  refusals: (Omit<OAuthRefusal, 'time' | 'description'> & { count: number; unrecorded: number })[];
  /** Refusals from clients and addresses beyond the per-window limit of keys. */
  otherRefusals: number;
}

export type OAuthAuditRecord = OAuthRefusal | OAuthRefusalSummary;

/**
 * Refusals anyone can cause are durable writes: per minute, the first 5 of each client and
 * address and at most 100 in all are kept verbatim, the rest counted in one summary record, with
 * at most 1,000 clients and addresses counted one by one (common/src/refusal-audit.ts).
 */
const REFUSAL_AUDIT = { intervalMs: 60_000, verbatimPerKey: 5, verbatimPerWindow: 100, maxKeys: 1000 };

/** How often entries past their lifetime (replay records of client assertions) are removed. */
const EXPIRED_SWEEP_MS = 60_000;

/**
 * The provider's endpoints the hub offers (openapi/hub.yaml, tag oauth); every other path
 * oidc-provider knows (authorization, logout, userinfo…) answers 404 here: the hub issues client
 * credentials tokens only, and `/session/end` would otherwise store a session for anyone asking.
 */
const OFFERED_PATHS = new Set([
  '/.well-known/openid-configuration',
  '/jwks',
  '/token',
  '/token/introspection',
  '/token/revocation',
]);

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
  private readonly clients: Database<Stored, string>;
  private readonly refusals: RefusalAudit<OAuthAuditRecord>;
  /** The oidc-provider models stored so far (their databases are swept of expired entries). */
  private readonly models = new Set<string>();
  private readonly sweepTimer: NodeJS.Timeout;
  private sweeping: Promise<unknown> = Promise.resolve();
  readonly audit: HashChain<OAuthAuditRecord>;

  constructor(private readonly options: OAuthOptions) {
    this.byClient = new RateLimiter(options.perClient.ratePerSecond, options.perClient.burst);
    this.byAddress = new RateLimiter(options.perAddress.ratePerSecond, options.perAddress.burst);
    this.clients = clientsDb(options.store);
    this.audit = new HashChain(options.store.db<ChainEntry<OAuthAuditRecord>, number>('oauth-audit'));
    this.refusals = new RefusalAudit<OAuthAuditRecord>({
      ...REFUSAL_AUDIT,
      write: (records) =>
        options.store
          .transaction(() => {
            for (const r of records) this.audit.append(r);
          })
          .catch((err: unknown) => options.logger.error({ err }, 'oauth audit failed')),
      summary: (w) => ({
        time: w.to,
        event: 'refusals-counted',
        from: w.from,
        to: w.to,
        refusals: w.keys.map(({ first, count, unrecorded }) => {
          const r = first as OAuthRefusal;
          return {
            event: r.event,
            ...(r.clientId === undefined ? {} : { clientId: r.clientId }),
            address: r.address,
            error: r.error,
            count,
            unrecorded,
          };
        }),
        otherRefusals: w.otherRefusals,
      }),
    });
    this.sweepTimer = setInterval(() => {
      this.sweeping = this.sweeping
        .then(() => removeExpiredEntries(options.store, this.models))
        .catch((err: unknown) => options.logger.error({ err }, 'removing expired oauth entries failed'));
    }, EXPIRED_SWEEP_MS);
    this.sweepTimer.unref();
  }

  /** Stops the background work and writes the count of the refusals not yet written (before the store closes). */
  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.sweeping;
    await this.refusals.close();
  }

  /** For listeners on port 0 (tests): the issuer is known once the port is. */
  setIssuer(issuer: string): void {
    this.options.issuer = issuer;
    this.provider = undefined;
  }

  get issuer(): string {
    return this.options.issuer;
  }

  /** The keys that sign the access tokens. */
  get signingKeys(): SigningKeys {
    return this.options.keys;
  }

  audience(market: string): string {
    return this.options.audienceTemplate.replace('{market}', market);
  }

  /** fastify handler for every path under /oauth. */
  handle = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const raw = request.raw as IncomingMessage & { originalUrl?: string; body?: unknown };
    const path = (raw.url ?? '/').slice(OAUTH_PREFIX.length) || '/';
    if (!OFFERED_PATHS.has(path.split('?')[0]!))
      throw new NotFound(`No OAuth endpoint ${OAUTH_PREFIX}${path.split('?')[0]}`);
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
      adapter: lmdbAdapterFactory(o.store, this.models),
      clients: [],
      jwks: { keys: o.keys.privateJwks() as never[] },
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
        rpInitiatedLogout: { enabled: false },
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
    const named = ctx.oidc?.client?.clientId ?? ctx.oidc?.params?.client_id;
    // error_detail says why (for example a replayed assertion); clients only see the generic description.
    const description = error.error_detail ?? error.error_description;
    void this.refuse({
      time: new Date().toISOString(),
      event: 'auth-failed',
      ...(named ? { clientId: String(named).slice(0, 128) } : {}),
      address: ctx.ip,
      error: error.error ?? error.name,
      ...(description ? { description: description.slice(0, 500) } : {}),
    });
  }

  /** Counts a refusal, written verbatim while few come from the same client and address. */
  private refuse(r: OAuthRefusal): Promise<void> {
    return this.refusals.record(`${r.event}\n${r.clientId ?? ''}\n${r.address}`, r);
  }

  /**
   * Limits token requests per source address and per client; returns why when refused. A client
   * id is read before authentication, so only a registered client has a bucket of its own: ids
   * made up by the caller count against the address alone and take no memory.
   */
  private async rateLimit(request: FastifyRequest): Promise<string | undefined> {
    const address = request.ip;
    const named = clientIdOf(request);
    const clientId = named && this.clients.get(named) !== undefined ? named : undefined;
    let why: string | undefined;
    if (!this.byAddress.take(`a:${address}`)) why = `too many token requests from ${address}`;
    else if (clientId && !this.byClient.take(`c:${clientId}`)) why = `too many token requests for client ${clientId}`;
    if (why) {
      await this.refuse({
        time: new Date().toISOString(),
        event: 'rate-limited',
        ...(named ? { clientId: named.slice(0, 128) } : {}),
        address,
        error: 'rate_limited',
        description: why.slice(0, 500),
      });
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
