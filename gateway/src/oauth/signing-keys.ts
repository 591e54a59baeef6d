import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Database, Store } from '../../../common/src/store.ts';
import { KeyPassphraseInvalid } from '../errors.ts';
import type { HubStore } from '../hub-store.ts';

interface StoredKey {
  kid: string;
  createdAt: number;
  /** Set when a newer key took over; the key stays published until its tokens have expired. */
  retiredAt?: number;
  /** The public half, kept in the clear: published to the nodes without the passphrase. */
  publicJwk?: JWK;
  salt: Buffer;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/**
 * Called inside the write transaction that changes the key set, with the public keys a verifier
 * should now accept: the hub publishes them on every market's feed, so nodes validate tokens from
 * their replica alone (ARCHITECTURE.md, "Who acted").
 */
export type KeysChanged = (publicKeys: JWK[]) => void;

/**
 * The access-token signing keys (ES256): generated on first start, encrypted at rest
 * (scrypt + AES-256-GCM under the gateway's key passphrase), rotated by command. A retired key
 * stays in the JWKS until every token it signed has expired.
 */
export class SigningKeys {
  private readonly db: Database<StoredKey, string>;

  constructor(
    private readonly store: Store,
    private readonly passphrase: string,
    /** How long a retired key stays published: the longest token lifetime. */
    private readonly tokenTtlSeconds: number,
    private readonly onChange?: KeysChanged,
  ) {
    this.db = store.db('oauth-signing-keys');
  }

  /** Makes a key on first start; keeps the public half of older stores' keys in the clear. */
  async ensure(): Promise<void> {
    const missing = [...this.db.getRange()].filter((e) => !e.value.publicJwk);
    if (missing.length > 0) {
      await this.store.transaction(() => {
        for (const { key, value } of missing)
          this.db.putSync(key, { ...value, publicJwk: publicOf(this.decrypt(value)) });
      });
    }
    if (this.active()) return;
    await this.add();
  }

  /** Retires the active key and makes a new one active. Returns the new key id. */
  async rotate(): Promise<string> {
    const current = this.active();
    const fresh = await this.encrypt();
    await this.store.transaction(() => {
      if (current) this.db.putSync(current.kid, { ...current, retiredAt: Date.now() });
      this.db.putSync(fresh.kid, fresh);
      this.onChange?.(this.publicJwks());
    });
    return fresh.kid;
  }

  /**
   * The public keys a verifier accepts: the active key and the retired keys whose tokens may still
   * be presented, `extraSeconds` after they expired (the hub's offline window for queued events).
   * Read inside `transaction` when given (a consistent snapshot).
   */
  publicJwks(extraSeconds = 0, options: { transaction?: unknown } = {}): JWK[] {
    const keep = Date.now() - (this.tokenTtlSeconds + extraSeconds + 60) * 1000;
    return [...this.db.getRange(options as never)]
      .map((e) => e.value)
      .filter((k) => k.publicJwk && (k.retiredAt === undefined || k.retiredAt > keep))
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((k) => k.publicJwk!);
  }

  /**
   * Private JWKs for oidc-provider: the active key first (it signs), then retired keys whose
   * tokens may still be valid (`maxTokenTtlSeconds` plus a minute for clock skew).
   */
  privateJwks(): JWK[] {
    const keep = Date.now() - (this.tokenTtlSeconds + 60) * 1000;
    const all = [...this.db.getRange()].map((e) => e.value);
    const active = all.filter((k) => k.retiredAt === undefined).sort((a, b) => b.createdAt - a.createdAt);
    const retired = all.filter((k) => k.retiredAt !== undefined && k.retiredAt > keep);
    return [...active.slice(0, 1), ...retired].map((k) => this.decrypt(k));
  }

  /**
   * The key ids `publicJwks(extraSeconds)` holds now: it changes at a rotation, and again when a
   * retired key's tokens have all expired and it leaves the set.
   */
  keySetTag(extraSeconds = 0): string {
    return this.publicJwks(extraSeconds)
      .map((k) => k.kid)
      .sort()
      .join(' ');
  }

  list(): { kid: string; createdAt: string; retiredAt?: string }[] {
    return [...this.db.getRange()].map(({ value: k }) => ({
      kid: k.kid,
      createdAt: new Date(k.createdAt).toISOString(),
      ...(k.retiredAt ? { retiredAt: new Date(k.retiredAt).toISOString() } : {}),
    }));
  }

  private active(): StoredKey | undefined {
    return [...this.db.getRange()].map((e) => e.value).find((k) => k.retiredAt === undefined);
  }

  private async add(): Promise<void> {
    const fresh = await this.encrypt();
    await this.store.transaction(() => {
      this.db.putSync(fresh.kid, fresh);
      this.onChange?.(this.publicJwks());
    });
  }

  private async encrypt(): Promise<StoredKey> {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(jwk);
    const full: JWK = { ...jwk, kid, alg: 'ES256', use: 'sig' };
    const salt = randomBytes(16);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', scryptSync(this.passphrase, salt, 32), iv);
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(full)), cipher.final()]);
    return { kid, createdAt: Date.now(), publicJwk: publicOf(full), salt, iv, tag: cipher.getAuthTag(), ciphertext };
  }

  private decrypt(k: StoredKey): JWK {
    try {
      const decipher = createDecipheriv('aes-256-gcm', scryptSync(this.passphrase, k.salt, 32), k.iv);
      decipher.setAuthTag(k.tag);
      return JSON.parse(Buffer.concat([decipher.update(k.ciphertext), decipher.final()]).toString()) as JWK;
    } catch (err) {
      throw new KeyPassphraseInvalid(
        `Cannot decrypt signing key ${k.kid}: wrong passphrase or damaged store`,
        {},
        { cause: err },
      );
    }
  }
}

function publicOf(jwk: JWK): JWK {
  const { d: _d, ...pub } = jwk;
  return pub;
}

/**
 * The hub's signing keys, made on first start and published on the feed of every served market
 * whenever they change (and now, for a market whose nodes have not been sent them yet).
 */
export async function openSigningKeys(
  hub: HubStore,
  passphrase: string,
  tokenTtlSeconds: number,
  markets: readonly string[],
): Promise<SigningKeys> {
  const keys = new SigningKeys(hub.store, passphrase, tokenTtlSeconds, (pub) => hub.publishSigningKeys(markets, pub));
  await keys.ensure();
  await hub.store.transaction(() => hub.publishSigningKeys(markets, keys.publicJwks()));
  return keys;
}
