import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../src/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'packtrust-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The permission bits of every entry of an LMDB environment, and of the environment itself. */
function modesOf(env: string): Record<string, string> {
  const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);
  return Object.fromEntries([['.', mode(env)], ...readdirSync(env).map((f) => [f, mode(join(env, f))])]);
}

describe('Store.open', () => {
  it('keeps the environment to its owner: directory 0700, files 0600', async () => {
    const store = Store.open({ path: join(dir, 'new', 'env') });
    await store.transaction(() => store.db('x').putSync('k', 'secret'));
    await store.close();
    expect(modesOf(join(dir, 'new', 'env'))).toEqual({ '.': '700', 'data.mdb': '600', 'lock.mdb': '600' });
    expect(modesOf(join(dir, 'new'))['.']).toBe('700');
  });

  it('tightens an environment made readable to others before', async () => {
    const path = join(dir, 'old');
    mkdirSync(path, { mode: 0o755 });
    const old = open({ path });
    await old.put('k', 'secret');
    await old.close();
    expect(modesOf(path)).toEqual({ '.': '755', 'data.mdb': '644', 'lock.mdb': '644' });
    const store = Store.open({ path });
    await store.close();
    expect(modesOf(path)).toEqual({ '.': '700', 'data.mdb': '600', 'lock.mdb': '600' });
  });
});
