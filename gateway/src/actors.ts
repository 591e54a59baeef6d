import { AccessTokenRejected, AccessTokenVerifier, type Actor } from '../../common/src/access-tokens.ts';
import type { ClientIdentity } from './client-identity.ts';
import { ActorUnproven, EventTimeInvalid, WrongMarket } from './errors.ts';
import type { SigningKeys } from './oauth/signing-keys.ts';

/** How far a node's clock may run ahead of the hub's before an event time counts as the future. */
export const CLOCK_SKEW_MS = 60_000;

export interface ActorProofOptions {
  /** The OAuth issuer (known once the listener is bound). */
  issuer(): string;
  /** The access tokens' audience for a market: the verifier API of that market. */
  audience(market: string): string;
  keys: Pick<SigningKeys, 'publicJwks' | 'keySetTag'>;
  /** How long after its token expired a queued offline event is still accepted. */
  offlineWindowSeconds: number;
  /** When onboarding staff disabled a client (epoch ms), undefined while it is enabled. */
  disabledSince(clientId: string): number | undefined;
}

/** A refusal of one event that says nothing bad of the node (it was queued too long, say). */
export interface EventRefusal {
  code: 'OFFLINE_WINDOW_PASSED' | 'CLIENT_DISABLED';
  detail: string;
}

/**
 * Who acted on a pack (ARCHITECTURE.md, "Who acted"). A verifier node relays, it does not vouch:
 * with each pack event and alert it forwards the access token of the pharmacy or wholesaler that
 * made it. The hub issued that token, so it verifies it and takes client, organisation, location,
 * role and market from it, never from the node. The rules, in order:
 * 1. the token verifies (ES256 with a hub signing key, issuer, `typ`, the audience of the node's
 *    market) and names the node's market, else the whole request is refused (403
 *    `HUB_ACTOR_UNPROVEN` or `HUB_WRONG_MARKET`): a node that sends it misbehaves;
 * 2. the event time lies inside the token's validity (`iat` ≤ at ≤ `exp`, with {@link CLOCK_SKEW_MS})
 *    and not in the future, else 403 `HUB_EVENT_TIME_INVALID` (a node cannot back-date an event
 *    beyond the token it holds, so it cannot move the 10-day undo window);
 * 3. the token expired at most the offline window ago (events queued while the hub was
 *    unreachable), else that event alone is refused, `OFFLINE_WINDOW_PASSED`;
 * 4. the client was not disabled before the event, else that event is refused, `CLIENT_DISABLED`.
 * Verified tokens are cached by hash, so a pharmacy's many events cost one signature check.
 */
export class ActorProof {
  private readonly tokens: AccessTokenVerifier;

  constructor(private readonly o: ActorProofOptions) {
    this.tokens = new AccessTokenVerifier({
      get issuer() {
        return o.issuer();
      },
      keys: () => o.keys.publicJwks(o.offlineWindowSeconds),
      keysTag: () => o.keys.keySetTag(o.offlineWindowSeconds),
    });
  }

  /** The actor of an event `node` forwards, made at `at` (epoch ms); throws a 403 problem (rules 1–2). */
  async prove(
    token: string,
    node: Pick<ClientIdentity, 'market'>,
    at: number,
    now = Date.now(),
  ): Promise<{ actor: Actor; refusal?: EventRefusal }> {
    const market = node.market ?? '';
    let actor: Actor;
    try {
      // The audience of the token's own market, so that a token of another market is named as such.
      actor = await this.tokens.verify(token, (m) => this.o.audience(m));
    } catch (err) {
      if (err instanceof AccessTokenRejected)
        throw new ActorUnproven(`The access token is not accepted: ${err.message}`);
      throw err;
    }
    if (actor.market !== market)
      throw new WrongMarket(`This node serves ${market}; the access token is of a ${actor.market} client`);
    // Not a number (a date the format allows but no clock has, such as a leap second) is no time.
    if (
      !Number.isFinite(at) ||
      at < actor.iat * 1000 - CLOCK_SKEW_MS ||
      at > actor.exp * 1000 + CLOCK_SKEW_MS ||
      at > now + CLOCK_SKEW_MS
    ) {
      throw new EventTimeInvalid(
        `The event time ${Number.isFinite(at) ? new Date(at).toISOString() : String(at)} is not inside its token's validity ` +
          `(${new Date(actor.iat * 1000).toISOString()} to ${new Date(actor.exp * 1000).toISOString()}) or is in the future`,
      );
    }
    if (now > actor.exp * 1000 + this.o.offlineWindowSeconds * 1000) {
      return {
        actor,
        refusal: {
          code: 'OFFLINE_WINDOW_PASSED',
          detail: `the event reached the hub more than ${this.o.offlineWindowSeconds} s after its access token expired`,
        },
      };
    }
    const disabled = this.o.disabledSince(actor.clientId);
    if (disabled !== undefined && at >= disabled) {
      return { actor, refusal: { code: 'CLIENT_DISABLED', detail: `client ${actor.clientId} is disabled` } };
    }
    return { actor };
  }
}
