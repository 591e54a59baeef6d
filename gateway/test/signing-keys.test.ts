import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { Store } from '../../common/src/store.ts';
import { SigningKeys } from '../src/oauth/signing-keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'packtrust-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.useRealTimers());

describe('SigningKeys.keySetTag', () => {
  it('drops a retired key once its tokens have all expired, and keeps it for the offline window', async () => {
    const store = Store.open({ path: join(dir, 'keys') });
    const published: JWK[][] = [];
    const keys = new SigningKeys(store, 'a passphrase for the test', 60, (pub) => published.push(pub));
    try {
      await keys.ensure();
      const first = keys.publicJwks()[0]!.kid!;
      const second = await keys.rotate();
      // The rotation publishes both: tokens of the retired key are still valid.
      expect(
        published
          .at(-1)!
          .map((k) => k.kid)
          .sort(),
      ).toEqual([first, second].sort());
      expect(published.at(-1)!.every((k) => k.d === undefined)).toBe(true);
      expect(keys.keySetTag()).toBe([first, second].sort().join(' '));

      // Token lifetime (60 s) and a minute of skew later, only the active key is left...
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 121_000 });
      expect(keys.keySetTag()).toBe(second);
      expect(keys.privateJwks().map((k) => k.kid)).toEqual([second]);
      // ...while the hub still checks queued offline events signed by the old key.
      expect(keys.keySetTag(3600)).toBe([first, second].sort().join(' '));
    } finally {
      await store.close();
    }
  });
});
