import type { Database, Store } from '../../../common/src/store.ts';
import { putIfAbsent, removeExpired } from '../../../common/src/store.ts';

/** What oidc-provider stores for a model instance. */
export type AdapterPayload = Record<string, unknown> & {
  grantId?: string;
  userCode?: string;
  uid?: string;
  consumed?: number;
};

export interface Stored {
  payload: AdapterPayload;
  /** Epoch ms; undefined = no expiry. */
  expiresAt?: number;
  /** Clients only: set by onboarding staff; a disabled client is not found. */
  disabled?: boolean;
  /** Epoch ms of the disabling: events the client made before it still count (offline queues). */
  disabledAt?: number;
}

/**
 * oidc-provider's persistence on LMDB: one database per model (`oauth-Client`,
 * `oauth-ReplayDetection`, …), entries with their expiry. Client metadata written by onboarding
 * staff lives in `oauth-Client`; a disabled client is invisible here, so it gets no token at once.
 *
 * oidc-provider's `ReplayDetection.unique` does find-then-save; `find` for that model claims the
 * id in the same LMDB write, so two requests with the same client assertion `jti` cannot both pass.
 */
export function lmdbAdapterFactory(store: Store, models: Set<string>): new (name: string) => LmdbAdapter {
  return class extends LmdbAdapter {
    constructor(name: string) {
      super(store, name);
      models.add(name);
    }
  };
}

/**
 * Removes the entries of `models` whose lifetime is over. oidc-provider never asks for them
 * again (`find` treats them as absent) but does not destroy them either: a replay record is kept
 * for every client assertion, so without this the store grows with every token issued.
 */
export async function removeExpiredEntries(store: Store, models: Iterable<string>, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const name of models) {
    removed += await removeExpired(
      store,
      store.db<Stored, string>(`oauth-${name}`),
      (s) => s.expiresAt !== undefined && s.expiresAt <= now,
    );
  }
  return removed;
}

export class LmdbAdapter {
  private readonly db: Database<Stored, string>;
  private readonly grants: Database<string, string>;

  constructor(
    private readonly store: Store,
    readonly name: string,
  ) {
    this.db = store.db(`oauth-${name}`);
    this.grants = store.db('oauth-grant-index', { dupSort: true, encoding: 'string' });
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const value: Stored = { payload, ...(expiresIn ? { expiresAt: Date.now() + expiresIn * 1000 } : {}) };
    await this.store.transaction(() => {
      this.db.putSync(id, value);
      if (payload.grantId) this.grants.putSync(payload.grantId, `${this.name}:${id}`);
    });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (this.name === 'ReplayDetection') return this.claim(id);
    return this.live(this.db.get(id));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    for (const { value } of this.db.getRange()) if (value.payload.userCode === userCode) return this.live(value);
    return undefined;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    for (const { value } of this.db.getRange()) if (value.payload.uid === uid) return this.live(value);
    return undefined;
  }

  async consume(id: string): Promise<void> {
    await this.store.transaction(() => {
      const found = this.db.get(id);
      if (found)
        this.db.putSync(id, { ...found, payload: { ...found.payload, consumed: Math.floor(Date.now() / 1000) } });
    });
  }

  async destroy(id: string): Promise<void> {
    await this.store.transaction(() => this.db.removeSync(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.store.transaction(() => {
      for (const member of this.grants.getValues(grantId)) {
        const [model, id] = [member.slice(0, member.indexOf(':')), member.slice(member.indexOf(':') + 1)];
        this.store.db<Stored, string>(`oauth-${model}`).removeSync(id);
      }
      this.grants.removeSync(grantId);
    });
  }

  /** Atomic find-or-claim for replay detection: returns the earlier payload if the id was seen. */
  private async claim(id: string): Promise<AdapterPayload | undefined> {
    let earlier: AdapterPayload | undefined;
    await this.store.transaction(() => {
      const found = this.live(this.db.get(id));
      if (found) {
        earlier = found;
        return;
      }
      // Kept until the assertion could not be used any more (provider upserts it with its exp next).
      putIfAbsent(this.db, id, { payload: { claimed: true }, expiresAt: Date.now() + 3600_000 });
    });
    return earlier;
  }

  private live(stored: Stored | undefined): AdapterPayload | undefined {
    if (!stored) return undefined;
    if (stored.expiresAt !== undefined && stored.expiresAt <= Date.now()) return undefined;
    if (stored.disabled === true) return undefined;
    return stored.payload;
  }
}
