import { createHash } from 'node:crypto';
import { createRemoteJWKSet, customFetch, errors, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { Agent, fetch } from 'undici';
import { defineError, Unauthenticated } from '../../common/src/errors.ts';

export const TokenInvalid = defineError('NODE_TOKEN_INVALID', 401, 'The access token is not valid for this verifier');
export const ClientDisabled = defineError(
  'NODE_CLIENT_DISABLED',
  401,
  'This client has been disabled by onboarding staff',
);
export const RoleNotAllowed = defineError('NODE_ROLE_NOT_ALLOWED', 403, 'This role may not do this');

export type Role = 'pharmacy' | 'hospital' | 'wholesaler' | 'parallel-distributor';

/** Who is calling, from a validated access token. */
export interface Caller {
  clientId: string;
  org: string;
  location: string;
  role: Role;
  market: string;
  exp: number;
}

export interface TokenValidatorOptions {
  issuer: string;
  /** This market's verifier API (the tokens' audience). */
  audience: string;
  market: string;
  /** The hub's JWKS URL and the CA that signed the hub's TLS certificate. */
  jwksUrl: string;
  caPem?: string;
  /** The market's deny-list (from the hub's feed): a disabled client's tokens are refused at once. */
  isDisabled?: (clientId: string) => boolean;
}

const ROLES = new Set<string>(['pharmacy', 'hospital', 'wholesaler', 'parallel-distributor']);
const MAX_CACHED = 100_000;

/**
 * Validates Bearer access tokens offline against the hub's JWKS (fetched once, fetched again when a
 * token names an unknown key id): issuer, audience, type, expiry, market and role. A token that
 * verified once is answered from a cache keyed by its SHA-256 until it expires, so the ECDSA
 * verification is paid once per token, not once per request.
 */
export class TokenValidator {
  private readonly jwks: JWTVerifyGetKey;
  private readonly cache = new Map<string, Caller>();
  private readonly dispatcher: Agent | undefined;

  constructor(private readonly options: TokenValidatorOptions) {
    this.dispatcher = options.caPem ? new Agent({ connect: { ca: options.caPem } }) : undefined;
    const dispatcher = this.dispatcher;
    this.jwks = createRemoteJWKSet(new URL(options.jwksUrl), {
      cooldownDuration: 10_000,
      [customFetch]: (url: string, init: RequestInit) =>
        fetch(url, {
          ...(init as Parameters<typeof fetch>[1]),
          ...(dispatcher ? { dispatcher } : {}),
        }) as unknown as Promise<Response>,
    });
  }

  /** The caller of an `Authorization` header value; throws a 401 problem when it does not hold. */
  async validate(authorization: string | undefined): Promise<Caller> {
    if (!authorization?.startsWith('Bearer '))
      throw new Unauthenticated('Send "Authorization: Bearer <access token>" from the packtrust OAuth provider');
    const token = authorization.slice(7).trim();
    const key = createHash('sha256').update(token).digest('base64url');
    const cached = this.cache.get(key);
    const now = Math.floor(Date.now() / 1000);
    if (cached) {
      if (cached.exp > now) return this.allowed(cached);
      this.cache.delete(key);
    }
    const caller = await this.verify(token);
    if (this.cache.size >= MAX_CACHED) this.evictExpired(now);
    this.cache.set(key, caller);
    return this.allowed(caller);
  }

  private allowed(caller: Caller): Caller {
    if (this.options.isDisabled?.(caller.clientId))
      throw new ClientDisabled(`Client ${caller.clientId} is disabled; its tokens are no longer accepted`);
    return caller;
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  private async verify(token: string): Promise<Caller> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        typ: 'at+jwt',
        algorithms: ['ES256'],
      }));
    } catch (err) {
      throw new TokenInvalid(describe(err));
    }
    if (payload.market !== this.options.market)
      throw new TokenInvalid(
        `the token is for market ${String(payload.market)}, this node serves ${this.options.market}`,
      );
    if (typeof payload.role !== 'string' || !ROLES.has(payload.role))
      throw new TokenInvalid('the token carries no packtrust role');
    return {
      clientId: String(payload.client_id ?? payload.sub),
      org: String(payload.org),
      location: String(payload.location),
      role: payload.role as Role,
      market: String(payload.market),
      exp: Number(payload.exp),
    };
  }

  private evictExpired(now: number): void {
    for (const [k, v] of this.cache) if (v.exp <= now) this.cache.delete(k);
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
  }
}

export function requireRole(caller: Caller, allowed: readonly Role[], what: string): void {
  if (!allowed.includes(caller.role)) throw new RoleNotAllowed(`A ${caller.role} may not ${what}`);
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is not accepted here`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (err instanceof errors.JWKSNoMatchingKey) return 'the token was signed by a key the hub does not publish';
  if (err instanceof errors.JOSEError) return `the token is malformed (${err.code})`;
  return 'the token cannot be validated';
}
