import { describe, expect, it } from 'vitest';
import { RefusalAudit, type RefusalWindow } from '../src/refusal-audit.ts';

type R = { key: string; n: number } | { summary: RefusalWindow<{ key: string; n: number }> };

function audit(limits: { verbatimPerKey: number; verbatimPerWindow: number; maxKeys: number }) {
  const written: R[][] = [];
  const a = new RefusalAudit<R>({
    intervalMs: 3_600_000,
    ...limits,
    write: async (records) => {
      written.push(records);
    },
    summary: (w) => ({ summary: w as RefusalWindow<{ key: string; n: number }> }),
  });
  return { a, written };
}

describe('RefusalAudit', () => {
  it('writes the first refusals of each key verbatim, the rest only in the summary', async () => {
    const { a, written } = audit({ verbatimPerKey: 2, verbatimPerWindow: 100, maxKeys: 10 });
    for (let n = 0; n < 5; n++) await a.record('x', { key: 'x', n });
    await a.record('y', { key: 'y', n: 0 });
    expect(written).toEqual([[{ key: 'x', n: 0 }], [{ key: 'x', n: 1 }], [{ key: 'y', n: 0 }]]);
    await a.close();
    expect(written.slice(3)).toEqual([
      [
        {
          summary: {
            from: expect.any(String),
            to: expect.any(String),
            keys: [
              { first: { key: 'x', n: 0 }, count: 5, unrecorded: 3 },
              { first: { key: 'y', n: 0 }, count: 1, unrecorded: 0 },
            ],
            otherRefusals: 0,
          },
        },
      ],
    ]);
  });

  it('caps verbatim refusals per window across keys, and counts keys beyond maxKeys together', async () => {
    const { a, written } = audit({ verbatimPerKey: 5, verbatimPerWindow: 3, maxKeys: 4 });
    for (let n = 0; n < 10; n++) await a.record(`k${n}`, { key: `k${n}`, n });
    expect(written).toHaveLength(3);
    await a.flush();
    const summary = (written[3]![0] as { summary: RefusalWindow<unknown> }).summary;
    expect(summary.keys.map((k) => [k.count, k.unrecorded])).toEqual([
      [1, 0],
      [1, 0],
      [1, 0],
      [1, 1],
    ]);
    expect(summary.otherRefusals).toBe(6);
    // A new window starts empty: its first refusal is written verbatim again.
    await a.record('k0', { key: 'k0', n: 10 });
    expect(written[4]).toEqual([{ key: 'k0', n: 10 }]);
    await a.close();
  });

  it('writes no summary for a window whose refusals were all written', async () => {
    const { a, written } = audit({ verbatimPerKey: 5, verbatimPerWindow: 5, maxKeys: 5 });
    await a.record('x', { key: 'x', n: 0 });
    await a.close();
    expect(written).toEqual([[{ key: 'x', n: 0 }]]);
  });
});
