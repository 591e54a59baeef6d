import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/src/log.ts';
import { Store } from '../../common/src/store.ts';
import { HubRefused, HubUnavailable } from '../src/errors.ts';
import { type DeadLetter, OutboxDrain } from '../src/outbox.ts';

const logger = createLogger('outbox-test', 'silent');
let dir: string;
let store: Store;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'packtrust-outbox-'));
  store = Store.open({ path: dir });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An outbox of `entries` whose hub answers each page with `answer` (the entries' values). */
async function outbox(entries: string[], answer: (page: string[]) => void) {
  const db = store.db<string, string>('outbox');
  await store.transaction(() => {
    for (const e of entries) db.putSync(e, e);
  });
  const delivered: string[] = [];
  const answers: [string, string][] = [];
  const drain = new OutboxDrain<string>(
    store,
    db,
    async (page) => {
      answer(page.map((e) => e.value));
      delivered.push(...page.map((e) => e.value));
    },
    logger,
    { what: 'entries', deadLetters: 'dead', onRefused: (e, refusal) => answers.push([e.value, refusal.hubCode]) },
  );
  const dead = () => [...store.db<DeadLetter<string>, string>('dead').getRange()].map((e) => [e.key, e.value.code]);
  return { db, drain, delivered, answers, dead };
}

const refusal = (status: number, code: string) => new HubRefused(status, code, `hub answered ${status}`);

describe('OutboxDrain.drain', () => {
  it.each([
    [401, 'HUB_SIGNATURE_EXPIRED'],
    [408, 'HTTP_408'],
    [429, 'HTTP_429'],
  ])(
    'keeps the entries when the hub answers %i (nothing said of the entry), and sends them once it takes them',
    async (status, code) => {
      let refuse = true;
      const o = await outbox(['a', 'b'], () => {
        if (refuse) throw refusal(status, code);
      });
      await o.drain.drain();
      expect({ left: o.db.getCount(), dead: o.dead(), delivered: o.delivered }).toEqual({
        left: 2,
        dead: [],
        delivered: [],
      });
      refuse = false;
      await o.drain.drain();
      expect({ left: o.db.getCount(), dead: o.dead(), delivered: o.delivered }).toEqual({
        left: 0,
        dead: [],
        delivered: ['a', 'b'],
      });
    },
  );

  it('sets aside each entry the hub refuses for good, records its answer, and delivers the ones behind it', async () => {
    const o = await outbox(['a', 'bad-400', 'c', 'bad-403', 'e'], (page) => {
      if (page.includes('bad-400')) throw refusal(400, 'BAD_REQUEST');
      if (page.includes('bad-403')) throw refusal(403, 'HUB_WRONG_MARKET');
    });
    await o.drain.drain();
    expect({ left: o.db.getCount(), delivered: o.delivered, dead: o.dead(), answers: o.answers }).toEqual({
      left: 0,
      delivered: ['a', 'c', 'e'],
      dead: [
        ['bad-400', 'BAD_REQUEST'],
        ['bad-403', 'HUB_WRONG_MARKET'],
      ],
      answers: [
        ['bad-400', 'BAD_REQUEST'],
        ['bad-403', 'HUB_WRONG_MARKET'],
      ],
    });
    expect(o.drain.deadLetters()).toBe(2);
    expect(o.drain.deadLettersByCode()).toEqual(
      new Map([
        ['BAD_REQUEST', 1],
        ['HUB_WRONG_MARKET', 1],
      ]),
    );
  });

  it('stops at an unreachable hub and keeps every entry', async () => {
    const o = await outbox(['a', 'b'], () => {
      throw new HubUnavailable('hub unreachable');
    });
    await o.drain.drain();
    expect({ left: o.db.getCount(), dead: o.dead() }).toEqual({ left: 2, dead: [] });
  });
});
