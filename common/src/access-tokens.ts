import { createHash } from 'node:crypto';
import {
  createLocalJWKSet,
  decodeJwt,
  errors,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { ROLES, type Role } from './pack-rules.ts';

/**
 * Who acted, as the hub's OAuth provider certified it in an access token (RFC 9068 JWT, ES256,
 * `typ: at+jwt`, claims set in gateway/src/oauth/provider.ts): the client, its organisation, its
 * location, its role and its market, and the token's validity (epoch seconds).
 */
export interface Actor {
  clientId: string;
  org: string;
  location: string;
  role: Role;
  market: string;
  audience: string;
  iat: number;
  exp: number;
}

/**
 * The audience of a market's access tokens, its verifier API: the default of the hub's and the
 * nodes' `audienceTemplate`, which must agree (`{market}` stands for the ISO 3166-1 code).
 */
export const AUDIENCE_TEMPLATE = 'urn:packtrust:verifier:{market}';

/** Why a token was not accepted; each service maps it to its own problem code. */
export class AccessTokenRejected extends Error {
  readonly code = 'ACCESS_TOKEN_REJECTED';
}

export interface AccessTokenVerifierOptions {
  issuer: string;
  /** The hub's public signing keys now; called again when `keysTag` changes. */
  keys(): JWK[];
  /** Changes whenever the key set does (a version number, the key ids joined…). */
  keysTag(): string | number;
  /** Verified tokens kept (by SHA-256) so the signature is checked once per token. */
  cacheSize?: number;
}

const DEFAULT_CACHE = 100_000;

/**
 * Checks access tokens against the hub's signing keys held locally: no call to the hub, so a
 * verifier node validates tokens from its replica alone and the hub checks the tokens that nodes
 * forward with pack events. Checks signature (ES256 only), issuer, audience, `typ` and the
 * packtrust claims; a verified token is cached by hash, so the ECDSA verification is paid once per
 * token. It does not judge time: `iat`/`exp` are returned and each caller applies its own rule
 * (a node: not expired now; the hub: the event time inside the token's validity, within the
 * offline window). Disabled clients are the callers' business too.
 */
export class AccessTokenVerifier {
  private keySet: JWTVerifyGetKey | undefined;
  private tag: string | number | undefined;
  private readonly cache = new Map<string, Actor>();

  constructor(private readonly options: AccessTokenVerifierOptions) {}

  /**
   * The actor of a token whose audience is `audience`, or, given a function, the audience of the
   * market the token names (the caller then compares markets and says which one was wrong).
   */
  async verify(token: string, audience: string | ((market: string) => string)): Promise<Actor> {
    const hash = createHash('sha256').update(token).digest('base64url');
    let actor = this.cache.get(hash);
    if (!actor) {
      actor = await this.verifySignature(token, audience);
      if (this.cache.size >= (this.options.cacheSize ?? DEFAULT_CACHE)) this.evict();
      this.cache.set(hash, actor);
    }
    const expected = typeof audience === 'string' ? audience : audience(actor.market);
    if (actor.audience !== expected) throw new AccessTokenRejected("the token's aud claim is not accepted here");
    return actor;
  }

  private async verifySignature(token: string, audience: string | ((market: string) => string)): Promise<Actor> {
    let iat: number;
    try {
      iat = Number(decodeJwt(token).iat);
    } catch {
      throw new AccessTokenRejected('the token is malformed');
    }
    if (!Number.isFinite(iat)) throw new AccessTokenRejected('the token has no issue time');
    let payload: Record<string, unknown>;
    try {
      // Time is judged by the caller; jose checks the rest as of the token's own issue time.
      ({ payload } = await jwtVerify(token, this.currentKeys(), {
        issuer: this.options.issuer,
        ...(typeof audience === 'string' ? { audience } : {}),
        typ: 'at+jwt',
        algorithms: ['ES256'],
        currentDate: new Date(iat * 1000),
        requiredClaims: ['exp', 'iat'],
      }));
    } catch (err) {
      throw new AccessTokenRejected(describe(err), { cause: err });
    }
    const role = payload.role;
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role))
      throw new AccessTokenRejected('the token carries no packtrust role');
    for (const claim of ['org', 'location', 'market', 'client_id'] as const) {
      if (typeof payload[claim] !== 'string' || payload[claim] === '')
        throw new AccessTokenRejected(`the token carries no ${claim}`);
    }
    const market = payload.market as string;
    const expected = typeof audience === 'string' ? audience : audience(market);
    const aud = payload.aud;
    if (!(aud === expected || (Array.isArray(aud) && aud.length === 1 && aud[0] === expected)))
      throw new AccessTokenRejected(`the token's aud claim is not accepted here`);
    return {
      clientId: payload.client_id as string,
      org: payload.org as string,
      location: payload.location as string,
      role: role as Role,
      market,
      audience: expected,
      iat,
      exp: Number(payload.exp),
    };
  }

  private currentKeys(): JWTVerifyGetKey {
    const tag = this.options.keysTag();
    if (!this.keySet || tag !== this.tag) {
      const keys = this.options.keys();
      if (keys.length === 0) throw new AccessTokenRejected('the hub signing keys are not known here yet');
      this.keySet = createLocalJWKSet({ keys } as JSONWebKeySet);
      this.tag = tag;
      // A key that left the set must not keep its tokens valid through the cache.
      this.cache.clear();
    }
    return this.keySet;
  }

  private evict(): void {
    const now = Date.now() / 1000;
    for (const [k, v] of this.cache) if (v.exp <= now) this.cache.delete(k);
    if (this.cache.size >= (this.options.cacheSize ?? DEFAULT_CACHE)) this.cache.clear();
  }
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is not accepted here`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (err instanceof errors.JWKSNoMatchingKey) return 'the token was signed by a key the hub does not publish';
  if (err instanceof errors.JOSEError) return `the token is malformed (${err.code})`;
  if (err instanceof AccessTokenRejected) return err.message;
  return 'the token cannot be validated';
}
