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
  parseElementString,
} from '../src/gs1.ts';

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

describe('GS1 element strings (Data Matrix content)', () => {
  const example: PackIdentifier = {
    productCode: '09506000134352',
    serial: '12345AZRQF1234567890',
    batch: 'A1C2E3G4I5',
    expiry: '280630',
  };

  it('parses the EMVO/GS1 example with the symbology identifier and GS separators', () => {
    const scanned = `]d2010950600013435217280630${'21'}12345AZRQF1234567890${GS}10A1C2E3G4I5`;
    expect(parseElementString(scanned)).toEqual(example);
    expect(parseElementString(`01095060001343522112345AZRQF1234567890${GS}10A1C2E3G4I5${GS}17280630`)).toEqual(example);
    expect(
      parseElementString(`]d2${GS}01095060001343521728063010A1C2E3G4I5${GS}2112345AZRQF1234567890${GS}710ABC123`),
    ).toEqual({
      ...example,
      nhrn: { '710': 'ABC123' },
    });
  });

  it('gives a clear error for malformed content', () => {
    const cases: [string, RegExp][] = [
      ['0109506000134352', /missing AI \(21\), \(10\), \(17\)/],
      [`010950600013435317280630219${GS}10A`, /check digit must be 2/],
      [`0109506000134352172802302199${GS}10A`, /expiry \(17\) "280230"/],
      [`99123`, /unknown or unsupported application identifier/],
      [`01095060001343521728063021A B${GS}10A`, /serial \(21\) contains " "/],
      [`010950600013435217280630211${GS}211${GS}10A`, /appears twice/],
      [`01095060`, /needs 14 characters/],
    ];
    for (const [input, message] of cases) expect(() => parseElementString(input)).toThrow(message);
    expect(() => parseElementString('')).toThrow(Gs1Error);
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
        expect(parseElementString(encodeElementString(id, { symbologyId }))).toEqual(id);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but a Gs1Error on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        try {
          parseElementString(s);
        } catch (err) {
          expect(err).toBeInstanceOf(Gs1Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
