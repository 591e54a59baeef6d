import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHARSET_82,
  charset82Problem,
  companyPrefixesOf,
  companyPrefixProblem,
  encodeElementString,
  expiryDate,
  GS,
  Gs1Error,
  gs1CheckDigit,
  gtinProblem,
  isGtin14,
  type PackIdentifier,
  parseScan,
  readElements,
} from '../src/gs1.ts';
import { AI_TABLE } from '../src/gs1-ais.ts';
import { GS1_VECTORS } from './fixtures/gs1-vectors.ts';

describe('GS1 check digits', () => {
  it('computes the check digit of published GS1 examples', () => {
    // GS1 General Specifications §7.9 example: GTIN-13 629104150021 → check digit 3.
    expect(gs1CheckDigit('629104150021')).toBe(3);
    expect(isGtin14('09506000134352')).toBe(true); // GS1 example GTIN used throughout the Digital Link standard
    expect(isGtin14('09506000134353')).toBe(false);
    expect(gtinProblem('0950600013435')).toBe('must be 14 digits');
    expect(gtinProblem('09506000134359')).toBe('check digit must be 2');
  });
});

describe('companyPrefixProblem', () => {
  it('accepts 4 to 12 digits and says what is wrong with anything else', () => {
    expect(companyPrefixProblem('9506')).toBeUndefined();
    expect(companyPrefixProblem('950600013435')).toBeUndefined();
    expect(companyPrefixProblem('950')).toBe('has 3 digits; a company prefix has 4 to 12');
    expect(companyPrefixProblem('9506000134352')).toBe('has 13 digits; a company prefix has 4 to 12');
    expect(companyPrefixProblem('95O6000')).toBe('must be digits only');
    expect(companyPrefixProblem('')).toBe('must be digits only');
  });
});

describe('companyPrefixesOf', () => {
  it('reads after the indicator digit, longest first, down to 4 digits', () => {
    expect(companyPrefixesOf('09506000134352')).toEqual([
      '950600013435',
      '95060001343',
      '9506000134',
      '950600013',
      '95060001',
      '9506000',
      '950600',
      '95060',
      '9506',
    ]);
    // A GTIN-14 with another indicator digit belongs to the same company prefix.
    expect(companyPrefixesOf('19506000134359')).toContain('9506000');
  });
});

describe('character set 82 and expiry', () => {
  it('has 82 characters and refuses what is outside it', () => {
    expect(CHARSET_82).toHaveLength(82);
    expect(charset82Problem('ABC-123/x')).toBeUndefined();
    expect(charset82Problem('ABC 123')).toContain('" "');
    expect(charset82Problem('#1')).toContain('"#"');
    expect(charset82Problem('é')).toContain('not in GS1 character set 82');
    expect(charset82Problem('x'.repeat(21))).toContain('at most 20');
    expect(charset82Problem('')).toBe('must not be empty');
  });

  it('reads YYMMDD with DD=00 as the end of the month and refuses impossible dates', () => {
    const today = new Date('2026-11-22T00:00:00Z');
    expect(expiryDate('280229', today)).toBe('2028-02-29');
    expect(expiryDate('270200', today)).toBe('2027-02-28');
    expect(expiryDate('281200', today)).toBe('2028-12-31');
    expect(expiryDate('270229', today)).toBeUndefined();
    expect(expiryDate('271301', today)).toBeUndefined();
    expect(expiryDate('2712', today)).toBeUndefined();
    expect(expiryDate('990101', today)).toBe('1999-01-01'); // more than 50 years ahead → previous century
    expect(expiryDate('760101', today)).toBe('2076-01-01');
  });
});

describe('parseScan', () => {
  const example: PackIdentifier = {
    productCode: '09506000134352',
    serial: '12345AZRQF1234567890',
    batch: 'A1C2E3G4I5',
    expiry: '280630',
  };

  it('parses the EMVO/GS1 example with the symbology identifier and GS separators', () => {
    const scanned = `]d2010950600013435217280630${'21'}12345AZRQF1234567890${GS}10A1C2E3G4I5`;
    expect(parseScan(scanned)).toEqual(example);
    expect(parseScan(`01095060001343522112345AZRQF1234567890${GS}10A1C2E3G4I5${GS}17280630`)).toEqual(example);
    expect(parseScan(`]d2${GS}01095060001343521728063010A1C2E3G4I5${GS}2112345AZRQF1234567890${GS}710ABC123`)).toEqual({
      ...example,
      nhrn: { '710': 'ABC123' },
    });
  });

  it('gives a clear error for malformed content', () => {
    const cases: [string, RegExp][] = [
      ['0109506000134352', /missing AI \(21\), \(10\), \(17\)/],
      [`010950600013435317280630219${GS}10A`, /check digit must be 2/],
      [`0109506000134352172802302199${GS}10A`, /expiry \(17\) "280230"/],
      [`89123`, /unknown application identifier at position 0: "8912"/],
      [`01095060001343521728063021A B${GS}10A`, /serial \(21\) contains " "/],
      [`010950600013435217280630211${GS}211${GS}10A`, /appears twice/],
      [`01095060`, /needs 14 characters/],
    ];
    for (const [input, message] of cases) expect(() => parseScan(input)).toThrow(message);
    expect(() => parseScan('')).toThrow(Gs1Error);
  });

  const charset82 = fc.constantFrom(...CHARSET_82.split(''));
  const value82 = fc.array(charset82, { minLength: 1, maxLength: 20 }).map((a) => a.join(''));
  const gtin = fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 13, maxLength: 13 }).map((d) => {
    const digits = d.join('');
    return digits + gs1CheckDigit(digits);
  });
  const expiry = fc
    .date({ min: new Date('2000-01-01'), max: new Date('2060-12-31'), noInvalidDate: true })
    .map((d) => d.toISOString().slice(2, 10).replaceAll('-', ''));
  const identifier = fc.record({ productCode: gtin, serial: value82, batch: value82, expiry });

  it('parse(encode(x)) = x for any valid identifier, with or without ]d2', () => {
    fc.assert(
      fc.property(identifier, fc.boolean(), (id, symbologyId) => {
        expect(parseScan(encodeElementString(id, { symbologyId }))).toEqual(id);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but a Gs1Error on arbitrary input, in any of the forms', () => {
    const heads = fc.constantFrom('', ']d2', ']d1', '(', '(01)', 'https://a/01/', 'https://a/01/09506000134352?', GS);
    fc.assert(
      fc.property(
        fc.tuple(heads, fc.string({ maxLength: 80 })).map(([head, tail]) => head + tail),
        (s) => {
          try {
            parseScan(s);
          } catch (err) {
            expect(err).toBeInstanceOf(Gs1Error);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('GS1 published vectors (common/test/fixtures/gs1-vectors.ts)', () => {
  it('has at least 40 of them, each with its source', () => {
    expect(GS1_VECTORS.length).toBeGreaterThanOrEqual(40);
    for (const v of GS1_VECTORS) expect(v.source).not.toBe('');
  });

  it.each(GS1_VECTORS.map((v) => [v.name, v] as const))('%s', (_, v) => {
    if ('elements' in v) expect(readElements(v.input)).toEqual(v.elements);
    else if ('pack' in v) expect(parseScan(v.input)).toEqual(v.pack);
    else {
      expect(() => parseScan(v.input)).toThrow(Gs1Error);
      expect(() => parseScan(v.input)).toThrow(v.refused);
    }
  });
});

describe('the AI table (common/src/gs1-ais.ts)', () => {
  it('marks as predefined-length exactly the AIs GS1 lists by their first two digits', () => {
    // GS1 General Specifications figure 7.8.5-2: element strings with predefined length using AIs,
    // by the AI's first two digits and the length of AI and value.
    const predefined: Record<string, number> = {
      '00': 20,
      '01': 16,
      '02': 16,
      '03': 16,
      '04': 18,
      '11': 8,
      '12': 8,
      '13': 8,
      '14': 8,
      '15': 8,
      '16': 8,
      '17': 8,
      '18': 8,
      '19': 8,
      '20': 4,
      '31': 10,
      '32': 10,
      '33': 10,
      '34': 10,
      '35': 10,
      '36': 10,
      '41': 16,
    };
    for (const [ais, flags, spec] of AI_TABLE) {
      const ai = ais.split('-')[0]!;
      const prefix = ai.slice(0, 2);
      expect({ ai, predefined: flags.includes('*') }).toEqual({ ai, predefined: prefix in predefined });
      if (flags.includes('*')) expect(ai.length + Number(/^N(\d+)/.exec(spec)![1])).toBe(predefined[prefix]);
    }
  });

  it('is prefix-free: no AI is the start of another, so an element string reads one way', () => {
    const ais = AI_TABLE.flatMap(([range]) => {
      const [first, last = first] = range.split('-') as [string, string?];
      return Array.from({ length: Number(last) - Number(first) + 1 }, (_, i) =>
        String(Number(first) + i).padStart(first.length, '0'),
      );
    });
    for (const a of ais) for (const b of ais) if (a !== b) expect(b.startsWith(a)).toBe(false);
  });
});

describe('the forms a scan may take, for any valid identifier', () => {
  const charset82 = fc.constantFrom(...CHARSET_82.split(''));
  const value82 = fc.array(charset82, { minLength: 1, maxLength: 20 }).map((a) => a.join(''));
  const gtin = fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 13, maxLength: 13 }).map((d) => {
    const digits = d.join('');
    return digits + gs1CheckDigit(digits);
  });
  const endOfMonth = fc.tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 1, max: 12 }));
  const expiry = fc.oneof(
    fc
      .date({ min: new Date('2000-01-01'), max: new Date('2060-12-31'), noInvalidDate: true })
      .map((d) => d.toISOString().slice(2, 10).replaceAll('-', '')),
    endOfMonth.map(([y, m]) => `${String(y).padStart(2, '0')}${String(m).padStart(2, '0')}00`),
  );
  const nhrn = fc.dictionary(fc.constantFrom('710', '711', '712', '713', '714', '715', '716', '717'), value82, {
    maxKeys: 2,
  });
  const identifier = fc
    .record({ productCode: gtin, serial: value82, batch: value82, expiry, nhrn })
    .map(({ nhrn, ...id }): PackIdentifier => (Object.keys(nhrn).length > 0 ? { ...id, nhrn } : id));
  const elementsOf = (id: PackIdentifier): [string, string][] => [
    ['01', id.productCode],
    ['17', id.expiry],
    ['10', id.batch],
    ['21', id.serial],
    ...Object.entries(id.nhrn ?? {}),
  ];

  it('parseScan(encodeElementString(x)) = x, with CR LF, doubled GS, ]d2', () => {
    fc.assert(
      fc.property(
        identifier,
        fc.boolean(),
        fc.constantFrom('', '\r\n', '\n', '\r'),
        fc.boolean(),
        (id, d2, eol, doubled) => {
          let scan = encodeElementString(id, { symbologyId: d2 }) + eol;
          if (doubled) scan = scan.replaceAll(GS, GS + GS);
          expect(parseScan(scan)).toEqual(id);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('reads the bracketed form of x as x', () => {
    fc.assert(
      fc.property(identifier, (id) => {
        const scan = elementsOf(id)
          .map(([ai, v]) => `(${ai})${v.replaceAll('(', '\\(')}`)
          .join('');
        expect(parseScan(scan)).toEqual(id);
      }),
      { numRuns: 1000 },
    );
  });

  it('reads the Digital Link URI of x as x', () => {
    fc.assert(
      fc.property(identifier, (id) => {
        const e = encodeURIComponent;
        const query = Object.entries(id.nhrn ?? {}).map(([ai, v]) => `&${ai}=${e(v)}`);
        const scan = `https://id.example/01/${id.productCode}/10/${e(id.batch)}/21/${e(id.serial)}?17=${id.expiry}${query.join('')}`;
        expect(parseScan(scan)).toEqual(id);
      }),
      { numRuns: 1000 },
    );
  });
});
