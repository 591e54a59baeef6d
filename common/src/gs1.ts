/**
 * GS1 rules for the unique identifier of a pack (Delegated Regulation (EU) 2016/161 Art. 4):
 * GTIN-14 check digits, the AI encodable character set 82, YYMMDD expiry dates, and the scans a
 * pharmacy's scanner sends: GS1 element strings as a Data Matrix carries them, their bracketed
 * human-readable form and GS1 Digital Link URIs (docs/domain.md §1). Every AI of the GS1 table
 * (common/src/gs1-ais.ts) is read and checked against its format; a scan names a pack by (01),
 * (21), (10) and (17), keeps the reimbursement numbers (710) to (717) and ignores the rest.
 *
 * Where it stops: the dictionary's AI associations (`req=`, `ex=`: which AIs go together) and its
 * syntax tests other than check digits, dates and times (country and currency codes, company
 * prefixes…) are not checked: they concern AIs a pack's verification ignores. Digital Link URIs
 * must have (01) as primary key; compressed Digital Link URIs and zero-suppressed GTINs are
 * refused. Pure functions, no I/O.
 */

import { AI_TABLE } from './gs1-ais.ts';

/** GS1 AI encodable character set 82 (GS1 General Specifications §7.11, figure 7.11-1). */
export const CHARSET_82 = `!"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz`;
const CHARSET_82_RE = /^[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+$/;

export const GS = '\x1d';
const SYMBOLOGY_ID = ']d2';

/** The GS1 mod-10 check digit of the digits before it. */
export function gs1CheckDigit(digits: string): number {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    // Weights 3,1,3,1… from the right-most digit before the check digit.
    const weight = (digits.length - i) % 2 === 1 ? 3 : 1;
    sum += (digits.charCodeAt(i) - 48) * weight;
  }
  return (10 - (sum % 10)) % 10;
}

export function isGtin14(code: string): boolean {
  return /^\d{14}$/.test(code) && gs1CheckDigit(code.slice(0, 13)) === code.charCodeAt(13) - 48;
}

/**
 * A GS1 Company Prefix has 4 to 12 digits (GS1 General Specifications, "GS1 Company Prefix"). A
 * GTIN-14 carries it right after the indicator digit, at the head of the GTIN-13 it contains; an
 * NTIN is read the same way, a national agency's range of codes standing in for the prefix.
 */
const COMPANY_PREFIX_DIGITS = { min: 4, max: 12 } as const;

/** Why `prefix` cannot be a GS1 Company Prefix, or undefined when it can. */
export function companyPrefixProblem(prefix: string): string | undefined {
  if (!/^\d+$/.test(prefix)) return 'must be digits only';
  const { min, max } = COMPANY_PREFIX_DIGITS;
  if (prefix.length < min || prefix.length > max)
    return `has ${prefix.length} digits; a company prefix has ${min} to ${max}`;
  return undefined;
}

/** The company prefixes a GTIN-14 could belong to, longest first: the digits after the indicator digit. */
export function companyPrefixesOf(productCode: string): string[] {
  const out: string[] = [];
  for (let n = COMPANY_PREFIX_DIGITS.max; n >= COMPANY_PREFIX_DIGITS.min; n--) out.push(productCode.slice(1, 1 + n));
  return out;
}

/** Why a product code is not a GTIN-14, or undefined when it is one. */
export function gtinProblem(code: string): string | undefined {
  if (!/^\d{14}$/.test(code)) return 'must be 14 digits';
  const expected = gs1CheckDigit(code.slice(0, 13));
  if (expected !== code.charCodeAt(13) - 48) return `check digit must be ${expected}`;
  return undefined;
}

/** Why a serial or batch is invalid, or undefined. */
export function charset82Problem(value: string): string | undefined {
  if (value.length === 0) return 'must not be empty';
  if (value.length > 20) return `has ${value.length} characters; at most 20`;
  if (!CHARSET_82_RE.test(value)) {
    const bad = [...value].find((c) => !CHARSET_82.includes(c))!;
    return `contains ${JSON.stringify(bad)}, which is not in GS1 character set 82`;
  }
  return undefined;
}

/**
 * The last valid day of a YYMMDD expiry (DD = 00 means the end of the month), as `YYYY-MM-DD`,
 * or undefined for an impossible date. The century follows GS1 §7.12: the year lies within
 * 49 years before and 50 years after `today`.
 */
export function expiryDate(yymmdd: string, today = new Date()): string | undefined {
  const m = /^(\d{2})(\d{2})(\d{2})$/.exec(yymmdd);
  if (!m) return undefined;
  const yy = Number(m[1]);
  const month = Number(m[2]);
  let day = Number(m[3]);
  if (month < 1 || month > 12) return undefined;
  const current = today.getUTCFullYear();
  let year = Math.floor(current / 100) * 100 + yy;
  if (year - current > 50) year -= 100;
  else if (current - year > 49) year += 100;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day === 0) day = daysInMonth;
  if (day > daysInMonth) return undefined;
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** The national healthcare reimbursement numbers a code may carry (GS1 AIs 710 to 717). */
const NHRN_AIS = ['710', '711', '712', '713', '714', '715', '716', '717'] as const;
export type NhrnAi = (typeof NHRN_AIS)[number];

/** The fields of a pack's unique identifier. */
export interface PackIdentifier {
  productCode: string;
  serial: string;
  batch: string;
  expiry: string;
  /** National healthcare reimbursement numbers, AI 710 to 717, by AI (716 is Italy's AIC). */
  nhrn?: Partial<Record<NhrnAi, string>>;
}

/** What was scanned is not a pack identifier; the message says why, for the caller. */
export class Gs1Error extends Error {}

/** One GS1 element: an application identifier and its value. */
export type Gs1Element = readonly [ai: string, value: string];

/**
 * One component of an AI's value, as the GS1 Barcode Syntax Dictionary specifies it
 * (common/src/gs1-ais.ts): its character set, its length, whether it may be left out at the end,
 * and the syntax tests ("linters") it must pass.
 */
interface Component {
  cset: 'N' | 'X' | 'Y' | 'Z';
  min: number;
  max: number;
  optional: boolean;
  linters: string[];
}

interface AiFormat {
  title: string;
  /** Of predefined length: its value needs no FNC1 (GS) after it. */
  predefined: boolean;
  /** May be a GS1 Digital Link data attribute (a query parameter). */
  dlAttribute: boolean;
  components: Component[];
}

/** Every AI of the table by its digits; ranges such as `3100-3105` and `91-99` expanded. */
const AIS: ReadonlyMap<string, AiFormat> = (() => {
  const out = new Map<string, AiFormat>();
  for (const [ais, flags, spec, title] of AI_TABLE) {
    const components = spec.split(' ').map((c): Component => {
      const m = /^(\[?)([NXYZ])(\d*)(?:\.\.(\d+))?\]?((?:,\w+)*)$/.exec(c);
      if (!m) throw new Error(`AI table: bad component ${c} of ${ais}`);
      const [, opt, cset, fixed, upTo, linters] = m;
      return {
        cset: cset as Component['cset'],
        min: upTo ? 1 : Number(fixed),
        max: Number(upTo ?? fixed),
        optional: opt === '[',
        linters: linters!.split(',').filter(Boolean),
      };
    });
    const format = { title, predefined: flags.includes('*'), dlAttribute: flags.includes('?'), components };
    const [first, last = first] = ais.split('-') as [string, string?];
    for (let n = Number(first); n <= Number(last); n++) out.set(String(n).padStart(first.length, '0'), format);
  }
  return out;
})();

/** The length of a predefined-length AI's value: its components are all of fixed length. */
function predefinedLength(format: AiFormat): number {
  return format.components.reduce((sum, c) => sum + c.max, 0);
}

/**
 * The AI at the head of `s`. The AIs of the table are prefix-free (no AI is the start of another;
 * common/test/gs1.test.ts checks it), so the first of 2, 3 or 4 digits that names one is the AI.
 */
function aiAt(s: string, at: number): string {
  for (const n of [2, 3, 4]) {
    const ai = s.slice(at, at + n);
    if (AIS.has(ai)) return ai;
  }
  throw new Gs1Error(`unknown application identifier at position ${at}: ${JSON.stringify(s.slice(at, at + 4))}`);
}

const CSETS: Record<Component['cset'], { re: RegExp; name: string }> = {
  N: { re: /^\d*$/, name: 'a digit' },
  X: { re: /^[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]*$/, name: 'in GS1 character set 82' },
  Y: { re: /^[#\-/0-9A-Z]*$/, name: 'in GS1 character set 39' },
  Z: { re: /^[A-Za-z0-9_-]*={0,2}$/, name: 'base64url' },
};

/**
 * Why a component fails one of the dictionary's syntax tests, or undefined. Only the tests that
 * say whether a value is well formed in itself are run: check digits and dates. The others (a
 * country code, a company prefix, a currency…) concern AIs a pack's verification ignores.
 */
function linterProblem(linter: string, v: string): string | undefined {
  switch (linter) {
    case 'csum':
      return gs1CheckDigit(v.slice(0, -1)) === v.charCodeAt(v.length - 1) - 48
        ? undefined
        : `check digit must be ${gs1CheckDigit(v.slice(0, -1))}`;
    case 'yymmd0':
      return expiryDate(v) ? undefined : `${JSON.stringify(v)} is not a valid YYMMDD date`;
    case 'yymmdd':
      return expiryDate(v) && !v.endsWith('00') ? undefined : `${JSON.stringify(v)} is not a valid YYMMDD date`;
    case 'hhmi':
      return Number(v.slice(0, 2)) < 24 && Number(v.slice(2)) < 60
        ? undefined
        : `${JSON.stringify(v)} is not a valid HHMM time`;
    default:
      return undefined;
  }
}

/** Why `value` is not of the AI's format (length, character set, check digit, date), or undefined. */
function valueProblem(ai: string, value: string): string | undefined {
  const format = AIS.get(ai)!;
  let at = 0;
  for (const c of format.components) {
    if (at >= value.length && c.optional) break;
    const part = c.min === c.max ? value.slice(at, at + c.max) : value.slice(at);
    if (part.length < c.min) return `has ${value.length} characters; needs ${describeLength(format)}`;
    if (part.length > c.max) break; // too long: reported below
    if (!CSETS[c.cset].re.test(part)) {
      const bad = [...part].find((ch) => !CSETS[c.cset].re.test(ch))!;
      return `contains ${JSON.stringify(bad)}, which is not ${CSETS[c.cset].name}`;
    }
    for (const linter of c.linters) {
      const p = linterProblem(linter, part);
      if (p) return p;
    }
    at += part.length;
  }
  if (at < value.length) return `has ${value.length} characters; needs ${describeLength(format)}`;
  return undefined;
}

function describeLength(format: AiFormat): string {
  const min = format.components.filter((c) => !c.optional).reduce((sum, c) => sum + c.min, 0);
  const max = format.components.reduce((sum, c) => sum + c.max, 0);
  return min === max ? `${max}` : `${min} to ${max}`;
}

/** Symbology identifiers (ISO/IEC 15424) whose data is a GS1 element string or a Digital Link URI. */
const ELEMENT_STRING_SYMBOLOGIES = [']d2', ']Q3'];
const URI_SYMBOLOGIES = [']d1', ']Q1'];

/**
 * Reads the GS1 elements of a scan, in one of the forms scanners send (docs/domain.md §1,
 * "What a scan may look like"):
 *
 * - the element string of a GS1 Data Matrix: optional symbology identifier `]d2`, a leading GS,
 *   GS (ASCII 29, FNC1) after each variable-length field but the last; predefined-length AIs need
 *   none (GS1 General Specifications §7.8.5); a doubled or trailing GS is tolerated;
 * - the bracketed human-readable form `(01)…(17)…(10)…(21)…` (`\(` for a bracket in a value);
 * - a GS1 Digital Link URI (GS1 Digital Link standard §4): `https://host/[stem/]01/{gtin}
 *   [/22/…][/10/…][/21/…][?17=…&…]`, percent-encoded;
 *
 * each with a trailing CR or LF a scanner's keyboard emulation adds. Every AI must be in the GS1
 * table and appear once; every value must have its format. Which AIs a pack needs is left to
 * {@link parseScan}.
 */
export function readElements(scan: string): Gs1Element[] {
  let s = scan.replace(/[\r\n]+$/, '');
  const symbology = /^\][A-Za-z][0-9A-Za-z]/.exec(s)?.[0];
  if (symbology) s = s.slice(3);
  let elements: Gs1Element[];
  if (/^https?:\/\//i.test(s)) {
    if (symbology && !URI_SYMBOLOGIES.includes(symbology))
      throw new Gs1Error(`a Digital Link URI comes with symbology identifier ]d1 or ]Q1, not ${symbology}`);
    elements = digitalLinkElements(s);
  } else if (symbology && !ELEMENT_STRING_SYMBOLOGIES.includes(symbology)) {
    throw new Gs1Error(`symbology identifier ${symbology} does not announce GS1 data (]d2 for a GS1 Data Matrix)`);
  } else if (!symbology && s.startsWith('(')) {
    elements = bracketedElements(s);
  } else {
    elements = elementStringElements(s);
  }
  if (elements.length === 0) throw new Gs1Error('the scan carries no GS1 element');
  const seen = new Set<string>();
  for (const [ai, value] of elements) {
    if (seen.has(ai)) throw new Gs1Error(`AI (${ai}) appears twice`);
    seen.add(ai);
    if (value === '') throw new Gs1Error(`AI (${ai}) has no value`);
  }
  const problems = elements.map(([ai, value]) => elementProblem(ai, value)).filter((p) => p !== undefined);
  if (problems.length > 0) throw new Gs1Error(problems.join('; '));
  return elements;
}

/**
 * Why an element's value breaks its AI's format, or undefined. The unique identifier's AIs are
 * named by their field (docs/domain.md §1); a YYMMDD date must exist.
 */
function elementProblem(ai: string, value: string): string | undefined {
  const named = (field: string, p: string | undefined) => p && `${field} (${ai}) ${p}`;
  switch (ai) {
    case '01':
      return named('product code', gtinProblem(value));
    case '21':
      return named('serial', charset82Problem(value));
    case '10':
      return named('batch', charset82Problem(value));
    case '17':
      return expiryDate(value) ? undefined : `expiry (17) ${JSON.stringify(value)} is not a valid YYMMDD date`;
    default:
      return named(AIS.get(ai)!.title, valueProblem(ai, value));
  }
}

function elementStringElements(s: string): Gs1Element[] {
  const out: Gs1Element[] = [];
  let at = 0;
  while (at < s.length) {
    if (s[at] === GS) {
      at++; // a leading, doubled or trailing separator
      continue;
    }
    const ai = aiAt(s, at);
    at += ai.length;
    const format = AIS.get(ai)!;
    let value: string;
    if (format.predefined) {
      const n = predefinedLength(format);
      value = s.slice(at, at + n);
      if (value.length !== n) throw new Gs1Error(`AI (${ai}) needs ${n} characters`);
      at += n;
    } else {
      const end = s.indexOf(GS, at);
      value = s.slice(at, end === -1 ? s.length : end);
      at = end === -1 ? s.length : end;
    }
    out.push([ai, value]);
  }
  return out;
}

function bracketedElements(s: string): Gs1Element[] {
  const out: Gs1Element[] = [];
  let at = 0;
  while (at < s.length) {
    const m = /^\((\d{2,4})\)/.exec(s.slice(at));
    if (!m) throw new Gs1Error(`expected a bracketed AI such as (01) at position ${at}`);
    const ai = m[1]!;
    if (!AIS.has(ai)) throw new Gs1Error(`unknown application identifier (${ai})`);
    at += m[0].length;
    let value = '';
    while (at < s.length && s[at] !== '(') {
      if (s[at] === '\\' && s[at + 1] === '(') at++;
      value += s[at++];
    }
    out.push([ai, value]);
  }
  return out;
}

/** The AIs that qualify a GTIN in a Digital Link path, in their order (syntax dictionary `dlpkey=22,10,21|235`). */
const GTIN_QUALIFIERS = ['22', '10', '21'];

function digitalLinkElements(uri: string): Gs1Element[] {
  const m = /^(http|https|HTTP|HTTPS):\/\/([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?(?:#.*)?$/.exec(uri);
  if (!m) throw new Gs1Error('a Digital Link URI starts with http:// or https:// and a host');
  if (!/^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/.test(uri)) {
    const bad = [...uri].find((c) => !/[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/.test(c))!;
    throw new Gs1Error(`the Digital Link URI contains ${JSON.stringify(bad)}, which a URI must percent-encode`);
  }
  const segments = (m[3] ?? '').split('/').slice(1);
  if (segments.length === 0 || segments.at(-1) === '')
    throw new Gs1Error('the Digital Link URI path must end with an AI and its value');
  const path: Gs1Element[] = [];
  let end = segments.length;
  while (end >= 2 && [...GTIN_QUALIFIERS, '235'].includes(segments[end - 2]!)) {
    path.unshift([segments[end - 2]!, decode(segments[end - 1]!, false)]);
    end -= 2;
  }
  if (end < 2 || segments[end - 2] !== '01')
    throw new Gs1Error('the Digital Link URI path must name a GTIN: /01/{14 digits}, then /10/{batch}/21/{serial}');
  const qualifiers = path.map(([ai]) => ai);
  const ordered =
    qualifiers.join() === '235' ||
    qualifiers.every((ai, i) => i === 0 || GTIN_QUALIFIERS.indexOf(ai) > GTIN_QUALIFIERS.indexOf(qualifiers[i - 1]!));
  if (!ordered)
    throw new Gs1Error(
      `the Digital Link key qualifiers ${qualifiers.map((ai) => `/${ai}`).join('')} are not in the order /22/10/21`,
    );
  path.unshift(['01', decode(segments[end - 1]!, false)]);
  const attributes: Gs1Element[] = [];
  for (const param of (m[4] ?? '').split('&')) {
    const eq = param.indexOf('=');
    const key = eq === -1 ? param : param.slice(0, eq);
    if (!/^\d+$/.test(key) || eq === -1) continue; // not an AI: other parameters are ignored (DL standard §4.7)
    if (!AIS.has(key)) throw new Gs1Error(`unknown application identifier (${key}) in the Digital Link query`);
    if (GTIN_QUALIFIERS.includes(key) || !AIS.get(key)!.dlAttribute)
      throw new Gs1Error(
        `AI (${key}) cannot be a Digital Link data attribute${GTIN_QUALIFIERS.includes(key) ? '; it belongs in the path after /01' : ''}`,
      );
    attributes.push([key, decode(param.slice(eq + 1), true)]);
  }
  return [...path, ...attributes];
}

/** A percent-decoded URI component; in a query `+` stands for a space (RFC 3986, HTML forms). */
function decode(v: string, query: boolean): string {
  try {
    return decodeURIComponent(query ? v.replaceAll('+', ' ') : v);
  } catch {
    throw new Gs1Error(`the Digital Link URI has a bad percent-encoding in ${JSON.stringify(v)}`);
  }
}

/**
 * The pack identifier a scan names ({@link readElements} for the forms it may take): (01), (21),
 * (10) and (17) checked by {@link validateIdentifier}, the reimbursement numbers (710) to (717)
 * kept, every other AI read, checked and ignored: Art. 8 of the Delegated Regulation lets the code
 * carry more than the unique identifier. Every problem is a {@link Gs1Error}.
 */
export function parseScan(scan: string): PackIdentifier {
  const fields = new Map(readElements(scan));
  const missing = ['01', '21', '10', '17'].filter((ai) => !fields.has(ai));
  if (missing.length > 0) throw new Gs1Error(`missing AI ${missing.map((ai) => `(${ai})`).join(', ')}`);
  const id: PackIdentifier = {
    productCode: fields.get('01')!,
    serial: fields.get('21')!,
    batch: fields.get('10')!,
    expiry: fields.get('17')!,
  };
  for (const ai of NHRN_AIS) {
    const v = fields.get(ai);
    if (v !== undefined) id.nhrn = { ...id.nhrn, [ai]: v };
  }
  return id;
}

/**
 * Every problem of a pack identifier's fields (GTIN-14 check digit, character set 82 and length
 * of serial and batch, a real YYMMDD date), as a Data Matrix's are checked; empty when it is valid.
 */
export function validateIdentifier(id: Omit<PackIdentifier, 'nhrn'>): string[] {
  const fields: Gs1Element[] = [
    ['01', id.productCode],
    ['21', id.serial],
    ['10', id.batch],
    ['17', id.expiry],
  ];
  return fields.map(([ai, value]) => elementProblem(ai, value)).filter((p) => p !== undefined);
}

/** The element string a Data Matrix would carry: fixed-length AIs first, GS after each variable one but the last. */
export function encodeElementString(id: PackIdentifier, options: { symbologyId?: boolean } = {}): string {
  const variable: [string, string][] = [
    ['21', id.serial],
    ['10', id.batch],
    ...Object.entries(id.nhrn ?? {}).filter((e): e is [string, string] => e[1] !== undefined),
  ];
  const body = `01${id.productCode}17${id.expiry}${variable.map(([ai, v]) => ai + v).join(GS)}`;
  return (options.symbologyId ? SYMBOLOGY_ID : '') + body;
}
