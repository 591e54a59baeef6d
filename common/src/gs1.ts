/**
 * GS1 rules for the unique identifier of a pack (Delegated Regulation (EU) 2016/161 Art. 4):
 * GTIN-14 check digits, the AI encodable character set 82, YYMMDD expiry dates, and GS1 element
 * strings as a Data Matrix carries them. Pure functions, no I/O.
 */

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

/** The fields of a pack's unique identifier. */
export interface PackIdentifier {
  productCode: string;
  serial: string;
  batch: string;
  expiry: string;
  /** National reimbursement numbers, AI 710 to 714, by AI. */
  nhrn?: Partial<Record<'710' | '711' | '712' | '713' | '714', string>>;
}

export class Gs1Error extends Error {}

const FIXED_LENGTH: Record<string, number> = { '01': 14, '17': 6 };
const VARIABLE_AIS = ['10', '21', '710', '711', '712', '713', '714'] as const;

/**
 * Parses the GS1 element string of a Data Matrix (GS as the FNC1 separator, optional `]d2`
 * symbology identifier) into a pack identifier; every problem is a {@link Gs1Error}.
 */
export function parseElementString(input: string): PackIdentifier {
  let s = input.startsWith(SYMBOLOGY_ID) ? input.slice(SYMBOLOGY_ID.length) : input;
  if (s.startsWith(GS)) s = s.slice(1); // a leading FNC1 some scanners transmit
  const fields = new Map<string, string>();
  let at = 0;
  while (at < s.length) {
    const ai = [2, 3]
      .map((n) => s.slice(at, at + n))
      .find((c) => c in FIXED_LENGTH || (VARIABLE_AIS as readonly string[]).includes(c));
    if (!ai)
      throw new Gs1Error(`unknown or unsupported application identifier at position ${at}: "${s.slice(at, at + 4)}"`);
    if (fields.has(ai)) throw new Gs1Error(`AI (${ai}) appears twice`);
    at += ai.length;
    let value: string;
    const fixed = FIXED_LENGTH[ai];
    if (fixed !== undefined) {
      value = s.slice(at, at + fixed);
      if (value.length !== fixed) throw new Gs1Error(`AI (${ai}) needs ${fixed} characters`);
      at += fixed;
      if (s[at] === GS) at++; // tolerated after a fixed-length field
    } else {
      const end = s.indexOf(GS, at);
      value = s.slice(at, end === -1 ? s.length : end);
      at = end === -1 ? s.length : end + 1;
    }
    fields.set(ai, value);
  }
  return identifierFromFields(fields);
}

function identifierFromFields(fields: Map<string, string>): PackIdentifier {
  const missing = ['01', '21', '10', '17'].filter((ai) => !fields.has(ai));
  if (missing.length > 0) throw new Gs1Error(`missing AI ${missing.map((ai) => `(${ai})`).join(', ')}`);
  const id: PackIdentifier = {
    productCode: fields.get('01')!,
    serial: fields.get('21')!,
    batch: fields.get('10')!,
    expiry: fields.get('17')!,
  };
  const problems = validateIdentifier(id);
  for (const ai of ['710', '711', '712', '713', '714'] as const) {
    const v = fields.get(ai);
    if (v === undefined) continue;
    const p = charset82Problem(v);
    if (p) problems.push(`NHRN (${ai}) ${p}`);
    id.nhrn = { ...id.nhrn, [ai]: v };
  }
  if (problems.length > 0) throw new Gs1Error(problems.join('; '));
  return id;
}

/**
 * Every problem of a pack identifier's fields (GTIN-14 check digit, character set 82 and length
 * of serial and batch, a real YYMMDD date), as a Data Matrix's are checked; empty when it is valid.
 */
export function validateIdentifier(id: Omit<PackIdentifier, 'nhrn'>): string[] {
  const problems: string[] = [];
  const gtin = gtinProblem(id.productCode);
  if (gtin) problems.push(`product code (01) ${gtin}`);
  const serial = charset82Problem(id.serial);
  if (serial) problems.push(`serial (21) ${serial}`);
  const batch = charset82Problem(id.batch);
  if (batch) problems.push(`batch (10) ${batch}`);
  if (!expiryDate(id.expiry)) problems.push(`expiry (17) "${id.expiry}" is not a valid YYMMDD date`);
  return problems;
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
