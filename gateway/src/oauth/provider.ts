import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import Provider, { type errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { HashChain } from '../../../common/src/hash-chain.ts';
import type { Logger } from '../../../common/src/log.ts';
import type { Store } from '../../../common/src/store.ts';
import type { operations } from '../../../openapi/generated/hub.ts';
import { NotFound } from '../errors.ts';
import { removeExpiredEntries } from './adapter.ts';
import { OAuthAudit, type OAuthAuditRecord } from './audit.ts';
import { clientSecretMatches, clientsDb, hashStoredSecrets } from './clients.ts';
import { CLIENT_ASSERTION_ALGS, CLIENT_AUTH_METHODS, providerConfiguration, ROUTES } from './configuration.ts';
import { clientIdOf, type TokenRateLimits, type TokenRequest, TokenRequestLimiter } from './rate-limit.ts';
import type { SigningKeys } from './signing-keys.ts';

export const OAUTH_PREFIX = '/oauth';

/**
 * Where the authorization server metadata of the issuer `<publicUrl>/oauth` is: RFC 8414 §3.1
 * inserts `/.well-known/oauth-authorization-server` between the issuer's host and its path, so it
 * is served by the gateway, outside /oauth.
 */
export const OAUTH_METADATA_PATH = `/.well-known/oauth-authorization-server${OAUTH_PREFIX}`;

/** The authorization server metadata the hub publishes (RFC 8414 §2), as openapi/hub.yaml defines it. */
export type AuthorizationServerMetadata =
  operations['getOAuthServerMetadata']['responses']['200']['content']['application/json'];

export interface OAuthOptions extends TokenRateLimits {
  /** `https://hub.example:8443/oauth` */
  issuer: string;
  /** The markets the hub serves: a client of any other market gets no token. */
  markets: ReadonlySet<string>;
  /** The verifier API of a market: the access token's audience and the `resource` a client asks for. */
  audienceTemplate: string;
  tokenTtlSeconds: number;
  cookieKeys: string[];
  keys: SigningKeys;
  store: Store;
  logger: Logger;
}

/** How often entries past their lifetime (replay records of client assertions) are removed. */
const EXPIRED_SWEEP_MS = 60_000;

/**
 * The provider's endpoints the hub offers (openapi/hub.yaml, tag oauth): the token endpoint and
 * the JWKS. Every other path oidc-provider knows (authorization, logout, userinfo…) answers 404
 * here: the hub issues client credentials tokens only, and `/session/end` would otherwise store a
 * session for anyone asking. Its OpenID discovery document too: the hub is an OAuth 2.0
 * authorization server, not an OpenID provider, and that document lists oidc-provider's every
 * feature; the hub's metadata is {@link OAuthService.metadata} (RFC 8414).
 */
const OFFERED_PATHS = new Set(['/jwks', '/token']);
const DISCOVERY_PATH = '/.well-known/openid-configuration';

/**
 * The OAuth 2.0 provider for pharmacies, hospitals and wholesalers: oidc-provider with the client
 * credentials grant only, private_key_jwt (or a client secret, per client), JWT access tokens
 * (RFC 9068) whose audience is the verifier API of the client's market, persisted on LMDB.
 * Mounted under /oauth on the gateway's listener (one TLS endpoint and certificate for the hub;
 * the listener asks for client certificates but does not require them).
 */
export class OAuthService {
  private provider: Provider | undefined;
  private providerKeysTag: string | undefined;
  private readonly limits: TokenRequestLimiter;
  private readonly refusals: OAuthAudit;
  /** The oidc-provider models stored so far (their databases are swept of expired entries). */
  private readonly models = new Set<string>();
  private readonly sweepTimer: NodeJS.Timeout;
  private sweeping: Promise<unknown> = Promise.resolve();
  /** The `oauth-audit` log of refused token requests. */
  readonly audit: HashChain<OAuthAuditRecord>;

  constructor(private readonly options: OAuthOptions) {
    const clients = clientsDb(options.store);
    const hashed = hashStoredSecrets(options.store);
    if (hashed > 0) options.logger.info({ clients: hashed }, 'client secrets kept in clear are now stored hashed');
    this.limits = new TokenRequestLimiter(options, (clientId) => clients.get(clientId) !== undefined);
    this.refusals = new OAuthAudit(options.store, options.logger);
    this.audit = this.refusals.log;
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

  /**
   * The RFC 8414 metadata: only what a client of this hub can use. The client credentials grant at
   * the token endpoint, and the JWKS; no authorization endpoint (RFC 8414 §2: none of the grants
   * uses one), so no response types; no introspection or revocation (configuration.ts).
   */
  metadata(): AuthorizationServerMetadata {
    const issuer = this.options.issuer;
    return {
      issuer,
      token_endpoint: `${issuer}${ROUTES.token}`,
      jwks_uri: `${issuer}${ROUTES.jwks}`,
      grant_types_supported: ['client_credentials'],
      response_types_supported: [],
      scopes_supported: ['verify'],
      token_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS],
      token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
    };
  }

  audience(market: string): string {
    return this.options.audienceTemplate.replace('{market}', market);
  }

  /** fastify handler for every path under /oauth. */
  handle = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const raw = request.raw as IncomingMessage & { originalUrl?: string; body?: unknown };
    const path = (raw.url ?? '/').slice(OAUTH_PREFIX.length) || '/';
    const endpoint = path.split('?')[0]!;
    if (endpoint === DISCOVERY_PATH) {
      throw new NotFound(
        `The hub is an OAuth 2.0 authorization server, not an OpenID provider: its metadata is at /.well-known/oauth-authorization-server${OAUTH_PREFIX} (RFC 8414)`,
      );
    }
    if (!OFFERED_PATHS.has(endpoint)) throw new NotFound(`No OAuth endpoint ${OAUTH_PREFIX}${endpoint}`);
    // The token endpoint authenticates a client: a signature check and a durable replay record.
    let admitted: TokenRequest | undefined;
    if (path.startsWith('/token') && request.method === 'POST') {
      const decision = await this.rateLimit(request);
      if ('refused' in decision) {
        reply
          .code(429)
          .header('retry-after', '1')
          .send({ error: 'invalid_request', error_description: decision.refused });
        return;
      }
      admitted = decision;
    }
    const provider = await this.current();
    if (admitted) {
      const settle = admitted.settle;
      reply.raw.once('finish', () => settle(reply.raw.statusCode < 300));
    }
    reply.hijack();
    raw.originalUrl = raw.url;
    raw.url = path;
    // fastify has read the body already; oidc-provider then parses req.body itself.
    if (Buffer.isBuffer(request.body)) raw.body = request.body;
    provider.callback()(raw, reply.raw);
  };

  private async current(): Promise<Provider> {
    // Rebuilt when the key set changes: at a rotation, and when a retired key leaves the JWKS.
    const tag = this.options.keys.keySetTag();
    if (!this.provider || tag !== this.providerKeysTag) {
      this.provider = this.build();
      this.providerKeysTag = tag;
    }
    return this.provider;
  }

  private build(): Provider {
    const o = this.options;
    const provider = new Provider(
      o.issuer,
      providerConfiguration({ ...o, audience: (market) => this.audience(market), models: this.models }),
    );
    // Clients hold the hash of their secret (clients.ts): the presented secret is compared with
    // it. Replacing this method is oidc-provider's way of checking secrets it is not given in clear.
    provider.Client.prototype.compareClientSecret = function (this: { clientSecret?: string }, actual: string) {
      return clientSecretMatches(this.clientSecret, actual);
    };
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
    void this.refusals.refuse({
      time: new Date().toISOString(),
      event: 'auth-failed',
      ...(named ? { clientId: String(named).slice(0, 128) } : {}),
      address: ctx.ip,
      error: error.error ?? error.name,
      ...(description ? { description: description.slice(0, 500) } : {}),
    });
  }

  /** Limits token requests per source address and per client (rate-limit.ts); audits a refusal. */
  private async rateLimit(request: FastifyRequest): Promise<{ refused: string } | TokenRequest> {
    const named = clientIdOf(request);
    const decision = this.limits.admit(request.ip, named);
    if ('refused' in decision) {
      await this.refusals.refuse({
        time: new Date().toISOString(),
        event: 'rate-limited',
        ...(named ? { clientId: named.slice(0, 128) } : {}),
        address: request.ip,
        error: 'rate_limited',
        description: decision.refused.slice(0, 500),
      });
    }
    return decision;
  }
}
