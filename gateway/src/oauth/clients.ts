import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { ROLES, type Role } from '../../../common/src/pack-rules.ts';
import type { Database, Store } from '../../../common/src/store.ts';
import { isOrganisationId } from '../../../common/src/vocabulary.ts';
import { BadRequest, ClientInvalid, NotFound } from '../errors.ts';
import type { HubStore } from '../hub-store.ts';
import type { Stored } from './adapter.ts';

export interface ClientRegistration {
  market: string;
  role: Role;
  location: string;
  org: string;
  /** private_key_jwt: the client's public keys. */
  jwks?: { keys: Record<string, unknown>[] };
  /** A client secret instead, sent with HTTP Basic (default) or in the body (`post`). */
  secret?: boolean;
  secretMethod?: 'basic' | 'post';
}

export interface ClientSummary {
  clientId: string;
  market: string;
  role: Role;
  location: string;
  org: string;
  authMethod: string;
  disabled: boolean;
  createdAt: string;
}

/**
 * The pharmacies', hospitals' and wholesalers' OAuth clients, registered by onboarding staff
 * (never by dynamic registration), stored where oidc-provider's adapter reads them. A client
 * secret is shown once, when it is made (`add`, `rotateSecret`), and stored only as its hash
 * ({@link hashClientSecret}): a copy of the store authenticates no one.
 */
export class ClientRegistry {
  private readonly db: Database<Stored, string>;

  constructor(private readonly hub: HubStore) {
    this.db = clientsDb(hub.store);
  }

  async add(reg: ClientRegistration): Promise<{ clientId: string; clientSecret?: string }> {
    const problems: string[] = [];
    if (!/^[A-Z]{2}$/.test(reg.market)) problems.push('market must be an ISO 3166-1 alpha-2 code');
    else if (!this.hub.serves(reg.market)) problems.push(`market ${reg.market} is not one this hub serves`);
    if (!(ROLES as readonly string[]).includes(reg.role)) problems.push(`role must be one of ${ROLES.join(', ')}`);
    if (!/^[A-Za-z0-9._:-]{1,64}$/.test(reg.location))
      problems.push('location id must be 1-64 letters, digits, ".", "_", ":" or "-"');
    if (!isOrganisationId(reg.org)) problems.push('organisation id is invalid');
    if (!reg.jwks === !reg.secret) problems.push('give either a JWKS (private_key_jwt) or --secret');
    if (
      reg.jwks &&
      (!Array.isArray(reg.jwks.keys) || reg.jwks.keys.length === 0 || reg.jwks.keys.some((k) => 'd' in k))
    ) {
      problems.push('the JWKS must hold public keys only');
    }
    if (problems.length > 0) throw new ClientInvalid(problems.join('; '));
    const clientId = `${reg.market.toLowerCase()}-${reg.role}-${randomUUID()}`;
    const clientSecret = reg.secret ? randomBytes(32).toString('base64url') : undefined;
    const payload = {
      client_id: clientId,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'verify',
      token_endpoint_auth_method: reg.jwks ? 'private_key_jwt' : `client_secret_${reg.secretMethod ?? 'basic'}`,
      ...(reg.jwks ? { jwks: reg.jwks } : { client_secret: hashClientSecret(clientSecret!) }),
      'urn:packtrust:market': reg.market,
      'urn:packtrust:role': reg.role,
      'urn:packtrust:location': reg.location,
      'urn:packtrust:org': reg.org,
      'urn:packtrust:created_at': new Date().toISOString(),
    };
    await this.hub.store.transaction(() => this.db.putSync(clientId, { payload }));
    return clientSecret ? { clientId, clientSecret } : { clientId };
  }

  list(): ClientSummary[] {
    return [...this.db.getRange()].map(({ key, value }) => summary(key, value));
  }

  /**
   * The client gets no new token from now on, and the verifier nodes of its market refuse the
   * tokens it already holds: the disabling goes out on the market's feed (a deny-list).
   */
  async disable(clientId: string): Promise<void> {
    await this.update(clientId, (s) => {
      if (!s.disabled) {
        const market = String(s.payload['urn:packtrust:market']);
        this.hub.publish([market], { type: 'client-disabled', clientId, at: new Date().toISOString() });
      }
      return s.disabled ? s : { ...s, disabled: true, disabledAt: Date.now() };
    });
  }

  async rotateSecret(clientId: string): Promise<string> {
    const secret = randomBytes(32).toString('base64url');
    await this.update(clientId, (s) => {
      if (s.payload.jwks) throw new BadRequest(`${clientId} authenticates with private_key_jwt; it has no secret`);
      return { ...s, payload: { ...s.payload, client_secret: hashClientSecret(secret) } };
    });
    return secret;
  }

  private async update(clientId: string, change: (s: Stored) => Stored): Promise<void> {
    await this.hub.store.transaction(() => {
      const found = this.db.get(clientId);
      if (!found) throw new NotFound(`No client ${clientId}`);
      this.db.putSync(clientId, change(found));
    });
  }
}

const SECRET_HASH = 'sha256:';

/**
 * What is stored of a client secret: its SHA-256, base64url, marked `sha256:`. The secrets are 256
 * random bits, so no dictionary can find one from its hash and a slow password hash would only
 * slow down every token request (RFC 6819 §5.1.4.1.3 asks for the hash, not for the secret).
 * oidc-provider sees this value as the client's `client_secret`; the hub offers no method that
 * needs the secret itself (client_secret_jwt, symmetric signing or encryption).
 */
export function hashClientSecret(secret: string): string {
  return SECRET_HASH + createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/** Whether `presented` is the secret whose hash is `stored`, compared in constant time. */
export function clientSecretMatches(stored: string | undefined, presented: string): boolean {
  if (!stored?.startsWith(SECRET_HASH)) return false;
  const expected = Buffer.from(stored.slice(SECRET_HASH.length), 'base64url');
  const actual = createHash('sha256').update(presented, 'utf8').digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * Replaces the secrets that registrations made before secrets were hashed still hold in clear by
 * their hash (at the gateway's start, in one transaction); returns how many. Their clients keep
 * their secrets.
 */
export function hashStoredSecrets(store: Store): number {
  const db = clientsDb(store);
  return store.transactionSync(() => {
    let n = 0;
    for (const { key, value } of db.getRange()) {
      const secret = value.payload.client_secret;
      if (typeof secret !== 'string' || secret.startsWith(SECRET_HASH)) continue;
      db.putSync(key, { ...value, payload: { ...value.payload, client_secret: hashClientSecret(secret) } });
      n++;
    }
    return n;
  });
}

/** Where oidc-provider's adapter keeps clients (its model name). */
export function clientsDb(store: Store): Database<Stored, string> {
  return store.db('oauth-Client');
}

/**
 * When the client was disabled (epoch ms; 0 when the time was not kept, or the client is unknown),
 * or undefined while it is enabled.
 */
export function disabledSince(db: Database<Stored, string>, clientId: string): number | undefined {
  const found = db.get(clientId);
  if (!found) return 0;
  return found.disabled ? (found.disabledAt ?? 0) : undefined;
}

/** The disabled clients of a market, for the snapshot a node bootstraps from. */
export function* disabledClients(
  db: Database<Stored, string>,
  market: string,
  options: { transaction?: unknown } = {},
): Generator<string> {
  for (const { key, value } of db.getRange(options as never)) {
    if (value.disabled && value.payload['urn:packtrust:market'] === market) yield key;
  }
}

function summary(clientId: string, s: Stored): ClientSummary {
  const p = s.payload;
  return {
    clientId,
    market: String(p['urn:packtrust:market']),
    role: p['urn:packtrust:role'] as Role,
    location: String(p['urn:packtrust:location']),
    org: String(p['urn:packtrust:org']),
    authMethod: String(p.token_endpoint_auth_method),
    disabled: s.disabled === true,
    createdAt: String(p['urn:packtrust:created_at']),
  };
}
