import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { asBinary, type Database, type Key, open, type RootDatabase, type RootDatabaseOptionsWithPath } from 'lmdb';

export type { Database, Key, RootDatabase };

/** The files of an LMDB environment (in its directory). */
const ENVIRONMENT_FILES = ['data.mdb', 'lock.mdb'];

export interface StoreOptions {
  /** Directory of the LMDB environment; created if missing, readable by its owner only. */
  path: string;
  /** Upper bound of the memory map (bytes); LMDB grows the file up to it. */
  mapSize?: number;
  maxDbs?: number;
}

export interface DbOptions {
  encoding?: 'msgpack' | 'json' | 'string' | 'binary' | 'ordered-binary';
  keyEncoding?: 'ordered-binary' | 'uint32' | 'binary';
  useVersions?: boolean;
  dupSort?: boolean;
}

/**
 * The one LMDB wrapper of the project. An environment holds named databases; writes that belong
 * together go through {@link Store.transaction}, which commits atomically and resolves once the
 * commit is flushed to disk (so an answer sent after it is durable).
 */
export class Store {
  readonly root: RootDatabase;
  readonly path: string;

  private constructor(root: RootDatabase, path: string) {
    this.root = root;
    this.path = path;
  }

  /**
   * Opens (or creates) the environment at `options.path`. The stores hold what must not leak (the
   * evidence, OAuth clients, encrypted keys, the CA's inventory): the directory, and any parent it
   * creates, is 0700 and the files 0600, also for an environment created readable before.
   */
  static open(options: StoreOptions): Store {
    mkdirSync(options.path, { recursive: true, mode: 0o700 });
    chmodSync(options.path, 0o700);
    const root = open({
      path: options.path,
      maxDbs: options.maxDbs ?? 32,
      mapSize: options.mapSize ?? 64 * 1024 ** 3,
      // Values are written once and read many times; compression costs CPU on the read path.
      compression: false,
      // The mode LMDB creates its files with (mdb_env_open; lmdb-js passes it on, untyped).
      permissionsMode: 0o600,
    } as RootDatabaseOptionsWithPath);
    for (const file of ENVIRONMENT_FILES) {
      const path = join(options.path, file);
      if (existsSync(path)) chmodSync(path, 0o600);
    }
    return new Store(root, options.path);
  }

  db<V, K extends Key = Key>(name: string, options: DbOptions = {}): Database<V, K> {
    return this.root.openDB<V, K>({ name, encoding: options.encoding ?? 'msgpack', ...options });
  }

  /**
   * Runs `action` in one write transaction; resolves after the durable commit. If `action`
   * throws, nothing it wrote is committed and the promise rejects with that error. (lmdb-js
   * batches asynchronous transactions together and would commit the writes made before a throw;
   * a child transaction is what makes each action atomic on its own.)
   */
  transaction<T>(action: () => T): Promise<T> {
    return this.root.transaction(() => this.root.childTransaction(action)) as Promise<T>;
  }

  /** A blocking write transaction, for command-line tools and start-up code. */
  transactionSync<T>(action: () => T): T {
    return this.root.transactionSync(action);
  }

  async close(): Promise<void> {
    // lmdb-js renews its shared read transaction at a read and resets it on a timer. A read made
    // while `close` waits for pending writes arms that timer on a transaction `close` has ended,
    // and it throws from nowhere ("Attempt to reset an invalid read txn"). So the writes are
    // awaited first, and `close` then closes at once, leaving no such window.
    await this.root.flushed;
    this.root.resetReadTxn();
    await this.root.close();
  }
}

/**
 * Inside a write transaction: writes `value` unless `key` exists; false when it did. (lmdb-js
 * returns this from `putSync` with `noOverwrite`, though its typings say void.)
 */
export function putIfAbsent<V, K extends Key>(db: Database<V, K>, key: K, value: V): boolean {
  return (db.putSync(key, value, { noOverwrite: true }) as unknown as boolean) !== false;
}

/**
 * Inside a write transaction: `value` encoded once as `db` encodes its values, to be put under
 * many keys (a batch's packs all start the same): lmdb-js stores it as it is instead of encoding
 * it again per key. Inside the transaction because a value of a new shape makes the encoder save
 * its record structure with the writes.
 */
export function encodedOnce<V, K extends Key>(db: Database<V, K>, value: V): V {
  const encoder = (db as unknown as { encoder: { encode(value: V): Uint8Array } }).encoder;
  // A copy: the encoder reuses its buffer for the next value.
  return asBinary(Buffer.from(encoder.encode(value))) as unknown as V;
}

/**
 * Removes the entries of `db` whose value is `expired` (nonces, replay records past their
 * lifetime). Walks the database in pages of `pageSize` keys: one short write transaction per page,
 * in which each entry is read again (another process may have renewed it), and a turn of the
 * event loop between pages, so other writers are never held up for long. Returns how many went.
 */
export async function removeExpired<V, K extends Key>(
  store: Store,
  db: Database<V, K>,
  expired: (value: V) => boolean,
  pageSize = 1000,
): Promise<number> {
  let removed = 0;
  let after: K | undefined;
  for (;;) {
    const page = [
      ...db.getRange({ ...(after === undefined ? {} : { start: after, exclusiveStart: true }), limit: pageSize }),
    ];
    if (page.length === 0) return removed;
    after = page.at(-1)!.key;
    const keys = page.filter((e) => expired(e.value)).map((e) => e.key);
    if (keys.length > 0) {
      removed += await store.transaction(() => {
        let n = 0;
        for (const key of keys) {
          const value = db.get(key);
          if (value !== undefined && expired(value) && db.removeSync(key)) n++;
        }
        return n;
      });
    }
    if (page.length < pageSize) return removed;
    await setImmediate();
  }
}
