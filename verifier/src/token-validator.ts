import { AccessTokenRejected, AccessTokenVerifier, type Actor } from '../../common/src/access-tokens.ts';
import { Unauthenticated } from '../../common/src/errors.ts';
import { ClientDisabled, TokenInvalid } from './errors.ts';
import type { SigningKeySet } from './replica.ts';

/**
 * Who is calling, from a validated access token, and the token itself: the node forwards it with
 * every pack event and alert as the proof of who acted (ARCHITECTURE.md, "Who acted").
 */
export interface Caller extends Omit<Actor, 'audience' | 'iat'> {
  token: string;
}

export interface TokenValidatorOptions {
  issuer: string;
  /** This market's verifier API (the tokens' audience). */
  audience: string;
  market: string;
  /** The hub's token signing keys from the replica (the feed and the snapshot carry them). */
  signingKeys: () => SigningKeySet | undefined;
  /** The market's deny-list (from the hub's feed): a disabled client's tokens are refused at once. */
  isDisabled: (clientId: string) => boolean;
}

/**
 * Validates Bearer access tokens from the replica alone: the hub's signing keys reach the node
 * through its feed, so a node validates any token, one it never saw included, while the hub is
 * unreachable. Checks issuer, audience, type, expiry, market and role (common/src/access-tokens.ts,
 * which caches a verified token by hash until it expires) and the deny-list on every request.
 */
export class TokenValidator {
  private readonly tokens: AccessTokenVerifier;

  constructor(private readonly options: TokenValidatorOptions) {
    this.tokens = new AccessTokenVerifier({
      issuer: options.issuer,
      keys: () => options.signingKeys()?.keys ?? [],
      keysTag: () => options.signingKeys()?.tag ?? '',
    });
  }

  /** The caller of an `Authorization` header value; throws a 401 problem when it does not hold. */
  async validate(authorization: string | undefined, now = Date.now()): Promise<Caller> {
    if (!authorization?.startsWith('Bearer '))
      throw new Unauthenticated('Send "Authorization: Bearer <access token>" from the packtrust OAuth provider');
    const token = authorization.slice(7).trim();
    let actor: Actor;
    try {
      actor = await this.tokens.verify(token, this.options.audience);
    } catch (err) {
      if (err instanceof AccessTokenRejected) throw new TokenInvalid(err.message);
      throw err;
    }
    if (actor.exp * 1000 <= now) throw new TokenInvalid('the token has expired');
    if (actor.market !== this.options.market)
      throw new TokenInvalid(`the token is for market ${actor.market}, this node serves ${this.options.market}`);
    if (this.options.isDisabled(actor.clientId))
      throw new ClientDisabled(`Client ${actor.clientId} is disabled; its tokens are no longer accepted`);
    const { clientId, org, location, role, market, exp } = actor;
    return { clientId, org, location, role, market, exp, token };
  }
}
