import type { FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';

/**
 * Token buckets by key (a client id, a source address): `ratePerSecond` sustained, `burst` at
 * once. In memory: a limit protects this gateway process, which is what a flood hits.
 *
 * At most `maxKeys` buckets are kept, the least recently used one making room for a new key, so
 * that keys a caller makes up (source addresses: an IPv6 client has 2^64 of them) cost bounded
 * memory and cannot empty the table of the buckets in use. A bucket dropped for room comes back
 * full, which is what it would be after `burst / ratePerSecond` seconds of quiet anyway.
 */
export class RateLimiter {
  /** In order of last use (a Map keeps insertion order; a used key is moved to the end). */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes a token for `key`; false when the bucket is empty. */
  take(key: string, now = Date.now()): boolean {
    const b = this.bucket(key, now);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Whether `key` has a token, taking none. */
  has(key: string, now = Date.now()): boolean {
    return this.bucket(key, now).tokens >= 1;
  }

  /** Gives back a token taken for `key` (a reservation that was not used), up to the burst. */
  giveBack(key: string, now = Date.now()): void {
    const b = this.bucket(key, now);
    b.tokens = Math.min(this.burst, b.tokens + 1);
  }

  /** The bucket of `key`, refilled up to now and made the most recently used. */
  private bucket(key: string, now: number): { tokens: number; at: number } {
    let b = this.buckets.get(key);
    if (b) this.buckets.delete(key);
    else {
      b = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, b);
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSecond);
    b.at = now;
    return b;
  }
}

export interface TokenRateLimits {
  perClient: { ratePerSecond: number; burst: number };
  perAddress: { ratePerSecond: number; burst: number };
}

/**
 * The limits of token requests. The client a request names is read before authentication, so
 * anyone can name any client: what others send in a client's name must not lock it out.
 *
 * - Per source address: every request.
 * - Per client: the requests that authenticated as it (answered 2xx), so only the client itself
 *   spends its allowance; a request is refused when the client has none left.
 * - Per client and source address: every request naming the client, given back when it
 *   authenticates, so failures from one address (a flood, a guessed secret) end in 429 for that
 *   address while the client, from its own, keeps getting tokens.
 *
 * Only a registered client gets buckets: ids made up by the caller count against the address
 * alone and take no memory.
 */
export class TokenRequestLimiter {
  private readonly byClient: RateLimiter;
  private readonly failuresBySource: RateLimiter;
  private readonly byAddress: RateLimiter;

  constructor(
    limits: TokenRateLimits,
    /** Whether a client id is registered (only then does it get a bucket). */
    private readonly registered: (clientId: string) => boolean,
  ) {
    this.byClient = new RateLimiter(limits.perClient.ratePerSecond, limits.perClient.burst);
    this.failuresBySource = new RateLimiter(limits.perClient.ratePerSecond, limits.perClient.burst);
    this.byAddress = new RateLimiter(limits.perAddress.ratePerSecond, limits.perAddress.burst);
  }

  /**
   * Admits a request from `address` naming client `named`, or says why not. An admitted request
   * must be told how it ended ({@link TokenRequest.settle}).
   */
  admit(address: string, named: string | undefined): { refused: string } | TokenRequest {
    const clientId = named && this.registered(named) ? named : undefined;
    if (!this.byAddress.take(`a:${address}`)) return { refused: `too many token requests from ${address}` };
    if (!clientId) return { settle: () => {} };
    if (!this.byClient.has(clientId)) return { refused: `too many token requests for client ${clientId}` };
    const source = `${clientId}\n${address}`;
    if (!this.failuresBySource.take(source)) {
      return { refused: `too many failed token requests for client ${clientId} from ${address}` };
    }
    return {
      settle: (authenticated) => {
        if (!authenticated) return;
        this.failuresBySource.giveBack(source);
        this.byClient.take(clientId);
      },
    };
  }
}

/** An admitted token request: `settle` says whether the client authenticated (the provider answered 2xx). */
export interface TokenRequest {
  settle(authenticated: boolean): void;
}

/** The client a token request names, read before authentication (only to key the rate limit). */
export function clientIdOf(request: FastifyRequest): string | undefined {
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
