import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ChainEntry, HashChain } from '../src/hash-chain.ts';
import { Store } from '../src/store.ts';

let dir: string;
let store: Store;
let chain: HashChain<{ n: number; data: Buffer }>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'chain-'));
  store = Store.open({ path: dir });
  chain = new HashChain(store.db<ChainEntry<{ n: number; data: Buffer }>, number>('log'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function appendMany(n: number) {
  for (let i = 1; i <= n; i++) await store.transaction(() => chain.append({ n: i, data: Buffer.from([i]) }));
}

describe('HashChain', () => {
  it('links each entry to the one before and verifies a whole log', async () => {
    await appendMany(5);
    const entries = [...chain.entries()];
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(entries[1]!.prev).toBe(entries[0]!.hash);
    expect(chain.verify()).toMatchObject({ ok: true, checked: 5, lastSeq: 5 });
    expect(chain.verify(3)).toMatchObject({ ok: true, checked: 3 });
  });

  it('reports the first entry whose content was changed', async () => {
    await appendMany(5);
    const e = chain.db.get(3)!;
    await store.transaction(() => chain.db.putSync(3, { ...e, body: { ...e.body, n: 99 } }));
    expect(chain.verify()).toMatchObject({
      ok: false,
      firstBroken: { seq: 3, reason: expect.stringContaining('content') },
    });
  });

  it('reports a removed entry and a rehashed entry whose successor no longer links', async () => {
    await appendMany(5);
    await store.transaction(() => chain.db.removeSync(2));
    expect(chain.verify()).toMatchObject({ ok: false, firstBroken: { seq: 3 } });
    await store.transaction(() => {
      const e = chain.db.get(4)!;
      const body = { ...e.body, n: 42 };
      chain.db.putSync(4, { ...e, body, hash: HashChain.hash(4, e.prev, body) });
    });
    expect(chain.verify(4)).toMatchObject({
      ok: false,
      firstBroken: { seq: 5, reason: expect.stringContaining('link') },
    });
  });
});

describe('Store.transaction', () => {
  it('commits nothing of a transaction whose action throws', async () => {
    const db = store.db<number, string>('t');
    await store.transaction(() => db.putSync('kept', 1));
    await expect(
      store.transaction(() => {
        db.putSync('lost', 2);
        chain.append({ n: 1, data: Buffer.alloc(0) });
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(db.get('kept')).toBe(1);
    expect(db.get('lost')).toBeUndefined();
    expect(chain.last()).toBeUndefined();
    await store.transaction(() => db.putSync('after', 3));
    expect(db.get('after')).toBe(3);
  });
});
