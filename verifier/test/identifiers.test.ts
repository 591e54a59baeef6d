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

describe('a Data Matrix as scanners send it (docs/domain.md §1)', () => {
  const serial = () => h.serials[2]!;
  const ok = { status: 200, json: { returnCode: 'ACTIVE', state: 'ACTIVE' } };

  it.each([
    [
      'with a production date, (240), (91) and Italy’s NHRN (716), no GS after the predefined-length AIs, and CR LF',
      () =>
        `]d201${CODE}11260115172912007160345678901${'\x1d'}240ADD-1${'\x1d'}10B1${'\x1d'}91X${'\x1d'}21${serial()}\r\n`,
    ],
    ['with a doubled GS', () => `]d201${CODE}17291200${'\x1d'}${'\x1d'}10B1${'\x1d'}${'\x1d'}21${serial()}`],
    ['in the bracketed human-readable form', () => `(01)${CODE}(17)291200(10)B1(21)${serial()}`],
    [
      'as a GS1 Digital Link URI',
      () => `https://id.example/01/${CODE}/10/B1/21/${encodeURIComponent(serial())}?17=291200&716=034567890`,
    ],
    [
      'with company data in (91) and (92) of 90 characters each, 258 characters in all',
      () =>
        `]d201${CODE}17291200${'\x1d'}91${'A'.repeat(90)}${'\x1d'}92${'7'.repeat(90)}${'\x1d'}10B1${'\x1d'}21${serial()}`,
    ],
    [
      'with the month’s last day for the batch’s YYMM00 expiry',
      () => `]d201${CODE}17291231${'\x1d'}10B1${'\x1d'}21${serial()}`,
    ],
  ])('is verified %s', async (_, dataMatrix) => {
    expect(await call('/v1/packs/verify', { dataMatrix: dataMatrix() })).toMatchObject({
      ...ok,
      json: { ...ok.json, productCode: CODE, serial: serial() },
    });
  });

  it('is refused with the reason when it carries an AI GS1 has not allocated, or a value out of format', async () => {
    const before = quiet();
    const refused = (detail: string) => ({
      status: 400,
      contentType: 'application/problem+json; charset=utf-8',
      json: {
        type: 'https://packtrust.dev/problems/node-data-matrix-invalid',
        title: 'The Data Matrix content is not a valid pack identifier',
        status: 400,
        detail,
        code: 'NODE_DATA_MATRIX_INVALID',
      },
    });
    expect(await call('/v1/packs/verify', { dataMatrix: `]d201${CODE}17291200891234${'\x1d'}10B1` })).toEqual(
      refused('unknown application identifier at position 24: "8912"'),
    );
    expect(
      await call('/v1/packs/verify', { dataMatrix: `]d201${CODE}1126133217291200${'\x1d'}10B1${'\x1d'}21${serial()}` }),
    ).toEqual(refused('PROD DATE (11) "261332" is not a valid YYMMDD date'));
    expect(
      await call('/v1/packs/verify', { dataMatrix: `https://id.example/01/${CODE}/21/${serial()}/10/B1?17=291200` }),
    ).toEqual(refused('the Digital Link key qualifiers /21/10 are not in the order /22/10/21'));
    expect(quiet()).toEqual(before);
  });
});
