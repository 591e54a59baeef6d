import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeElementString } from '../../common/src/gs1.ts';
import { CODE, type NodeHarness, startNodeHarness } from './fixtures.ts';

// A pack identifier sent as fields is checked as the Data Matrix path checks it (common/src/gs1.ts):
// an impossible identifier is the caller's mistake, answered 400 with a stable code; it is no
// unknown pack, so it raises no alert to the product's owner and changes nothing.

let h: NodeHarness;

beforeAll(async () => {
  h = await startNodeHarness({ name: 'identifiers', seed: 100 });
}, 90_000);

afterAll(() => h?.close());

async function call(path: string, body: unknown) {
  const a = await h.send(path, { body });
  return { status: a.status, contentType: a.headers['content-type'], json: JSON.parse(a.body.toString()) };
}

const pack = (fields: Record<string, string> = {}) => ({
  productCode: CODE,
  serial: h.serials[0]!,
  batch: 'B1',
  expiry: '291200',
  ...fields,
});

const invalid = (detail: string, extensions: Record<string, unknown> = {}) => ({
  status: 400,
  contentType: 'application/problem+json; charset=utf-8',
  json: {
    type: 'https://packtrust.dev/problems/node-identifier-invalid',
    title: 'The pack identifier is not a valid GS1 unique identifier',
    status: 400,
    detail,
    code: 'NODE_IDENTIFIER_INVALID',
    ...extensions,
  },
});

/** What nothing may have caused: an alert in the node's outbox or at the hub, a change asked of the hub. */
const quiet = () => ({
  outbox: h.node.alerts.pending(),
  hubAlerts: h.hub.alertsOf('ACME').length,
  decisions: h.hub.store.packTx.getCount(),
});

describe('a pack identifier sent as fields', () => {
  const cases: [string, Record<string, string>, string][] = [
    ['a wrong GTIN check digit', { productCode: '09506000134353' }, 'product code (01) check digit must be 2'],
    ['an impossible expiry', { expiry: '991399' }, 'expiry (17) "991399" is not a valid YYMMDD date'],
    [
      'a NUL in the serial',
      { serial: 'AB\u0000CD' },
      'serial (21) contains "\\u0000", which is not in GS1 character set 82',
    ],
    [
      'a right-to-left override in the serial',
      { serial: 'AB\u202eDC' },
      'serial (21) contains "\u202e", which is not in GS1 character set 82',
    ],
    [
      'a fullwidth letter in the serial',
      { serial: 'ＡBCD' },
      'serial (21) contains "Ａ", which is not in GS1 character set 82',
    ],
    [
      'a zero-width space in the batch',
      { batch: 'B\u200b1' },
      'batch (10) contains "\u200b", which is not in GS1 character set 82',
    ],
    ['a space in the serial', { serial: 'AB CD' }, 'serial (21) contains " ", which is not in GS1 character set 82'],
  ];

  it.each(cases)(
    'is refused with %s, for verify and every change, single and bulk, raising no alert',
    async (_, fields, detail) => {
      const before = quiet();
      expect(await call('/v1/packs/verify', pack(fields))).toEqual(invalid(detail));
      expect(await call('/v1/packs/supply', { txId: 'bad-1', ...pack(fields) })).toEqual(invalid(detail));
      const bulk = [pack(), pack(fields), pack({ serial: h.serials[2]! })];
      const errors = [{ path: '/packs/1', code: 'NODE_IDENTIFIER_INVALID', message: detail }];
      expect(await call('/v1/packs/verify-bulk', { packs: bulk })).toEqual(
        invalid(`pack 1 of 3: ${detail}`, { errors }),
      );
      expect(
        await call('/v1/packs/destroy/bulk', { packs: bulk.map((p, i) => ({ txId: `bad-bulk-${i}`, ...p })) }),
      ).toEqual(invalid(`pack 1 of 3: ${detail}`, { errors }));
      expect(quiet()).toEqual(before);
      // Nothing of the refused bulk was done: its valid packs are still active.
      expect((await call('/v1/packs/verify', pack())).json).toMatchObject({ returnCode: 'ACTIVE' });
    },
  );

  it('lists every bad pack of a bulk request', async () => {
    const bulk = [pack({ expiry: '991399' }), pack(), pack({ serial: 'x\u0000' })];
    expect(await call('/v1/packs/verify-bulk', { packs: bulk })).toEqual(
      invalid('pack 0 of 3: expiry (17) "991399" is not a valid YYMMDD date; and 1 other', {
        errors: [
          {
            path: '/packs/0',
            code: 'NODE_IDENTIFIER_INVALID',
            message: 'expiry (17) "991399" is not a valid YYMMDD date',
          },
          {
            path: '/packs/2',
            code: 'NODE_IDENTIFIER_INVALID',
            message: 'serial (21) contains "\\u0000", which is not in GS1 character set 82',
          },
        ],
      }),
    );
  });
});

describe('a Data Matrix with fields beside it', () => {
  const dataMatrix = encodeElementString({ productCode: CODE, serial: 'FIELDS-1', batch: 'B1', expiry: '291200' });

  it('is refused when a field names another pack, and taken when the fields repeat it', async () => {
    const before = quiet();
    expect(
      await call('/v1/packs/verify', { dataMatrix: `]d2${encodeElementString(pack())}`, serial: h.serials[1]! }),
    ).toEqual({
      status: 400,
      contentType: 'application/problem+json; charset=utf-8',
      json: {
        type: 'https://packtrust.dev/problems/node-identifier-conflict',
        title: 'The request names a pack twice, differently',
        status: 400,
        detail: `serial "${h.serials[1]}" is not the Data Matrix's (21) "${h.serials[0]}"`,
        code: 'NODE_IDENTIFIER_CONFLICT',
      },
    });
    expect(
      (await call('/v1/packs/supply', { txId: 'dm-conflict', dataMatrix, batch: 'B2', expiry: '291100' })).json,
    ).toMatchObject({
      code: 'NODE_IDENTIFIER_CONFLICT',
      detail: `batch "B2" is not the Data Matrix's (10) "B1"; expiry "291100" is not the Data Matrix's (17) "291200"`,
    });
    expect(quiet()).toEqual(before);
    const same = await call('/v1/packs/verify', { dataMatrix: `]d2${encodeElementString(pack())}`, ...pack() });
    expect(same.json).toMatchObject({ returnCode: 'ACTIVE', serial: h.serials[0] });
  });
});
