import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { defineError } from '../../../common/src/errors.ts';
import type { Database, Store } from '../../../common/src/store.ts';

export const KeyPassphraseInvalid = defineError(
  'OAUTH_KEY_PASSPHRASE_INVALID',
  500,
  'Cannot decrypt the token signing keys',
);

interface StoredKey {
  kid: string;
  createdAt: number;
  /** Set when a newer key took over; the key stays published until its tokens have expired. */
  retiredAt?: number;
  salt: Buffer;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/**
 * The access-token signing keys (ES256): generated on first start, encrypted at rest
 * (scrypt + AES-256-GCM under the gateway's key passphrase), rotated by command. A retired key
 * stays in the JWKS until every token it signed has expired.
 */
export class SigningKeys {
  private readonly db: Database<StoredKey, string>;
  private readonly meta: Database<number, string>;

  constructor(
    private readonly store: Store,
    private readonly passphrase: string,
  ) {
    this.db = store.db('oauth-signing-keys');
    this.meta = store.db('oauth-meta');
  }

  /** Changes whenever a key is added or retired, so a running provider knows to reload. */
  version(): number {
    return this.meta.get('keys-version') ?? 0;
  }

  async ensure(): Promise<void> {
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
      this.meta.putSync('keys-version', this.version() + 1);
    });
    return fresh.kid;
  }

  /**
   * Private JWKs for oidc-provider: the active key first (it signs), then retired keys whose
   * tokens may still be valid (`maxTokenTtlSeconds` plus a minute for clock skew).
   */
  privateJwks(maxTokenTtlSeconds: number): JWK[] {
    const keep = Date.now() - (maxTokenTtlSeconds + 60) * 1000;
    const all = [...this.db.getRange()].map((e) => e.value);
    const active = all.filter((k) => k.retiredAt === undefined).sort((a, b) => b.createdAt - a.createdAt);
    const retired = all.filter((k) => k.retiredAt !== undefined && k.retiredAt > keep);
    return [...active.slice(0, 1), ...retired].map((k) => this.decrypt(k));
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
      this.meta.putSync('keys-version', this.version() + 1);
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
    return { kid, createdAt: Date.now(), salt, iv, tag: cipher.getAuthTag(), ciphertext };
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
