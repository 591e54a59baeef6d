/**
 * Serial number randomisation checks (Delegated Regulation (EU) 2016/161 Art. 4(b)(ii): serials
 * made by a randomisation algorithm; Art. 4(c): the chance of guessing one must be negligible and
 * below 1 in 10,000; EMVO's URS adds "equally distributed, independent, not built by an easily
 * found algorithm"). Pure statistics; the rules are in docs/domain.md §1, "Serial randomisation".
 *
 * A guesser guesses a serial of a product, whatever its batch, so the guess probability is judged
 * over the product's whole population: the hub keeps each product's {@link SerialStatistics}
 * (hub-store.ts) and merges each upload into it, so splitting a weak batch into small uploads hides
 * nothing. Generators are looked for in the upload's own serials twice: in the first serials as
 * uploaded (a linear congruential generator shows only in its own order), and over the whole
 * upload sorted, so that shuffling a counter or a fixed step before the upload hides nothing.
 */

import { CHARSET_82 } from '../../common/src/gs1.ts';
import type { components } from '../../openapi/generated/hub.ts';

/**
 * The report an upload is answered with (openapi/hub.yaml `RandomisationReport`):
 * `guessProbability` as {@link SerialStatistics.guess} estimates it, with its `guessBasis`;
 * `serialSpaceBits` the log2 of the estimated space; `effectiveEntropyBits` the sum over positions
 * of the Shannon entropy of the characters used there; these over the product's `productPacks`.
 * For all-digit uploads, `meanGap` (at least 10,000) and `gapVariation` (the coefficient of
 * variation of the sorted gaps: about 1 for random serials, 0 for a fixed increment) of the
 * upload's serials. `verdict` is `reject` when a finding breaks the regulation, `warn` when one is
 * only inadvisable, else `pass`.
 */
export type RandomisationReport = components['schemas']['RandomisationReport'];
type ExplainedFinding = RandomisationReport['findings'][number];
/** A finding as the checks make it; `analyseSerials` adds its explanation. */
type Finding = Omit<ExplainedFinding, 'explanation'>;

/**
 * Each finding in the words of whoever sets up the line's serial number generator (the packaging
 * engineer): what it means for the packs and what to change. `detail` carries the figures.
 */
const EXPLANATIONS: Record<Finding['code'], string> = {
  GUESS_PROBABILITY_TOO_HIGH:
    'Too many of the possible serial numbers are used: someone who makes one up has a 1 in 10,000 chance or better ' +
    'of hitting a real pack, which the regulation forbids. Use longer serials, or more characters per position ' +
    '(letters and digits), drawn at random.',
  ARITHMETIC_PROGRESSION:
    'The serials go up by the same amount each time (a counter or a fixed step), even if they are printed in a ' +
    'different order: from one pack anyone can work out the others. Draw every serial at random instead.',
  LINEAR_CONGRUENTIAL_GENERATOR:
    "The serials come from a simple formula (a linear congruential generator, like many programming languages' " +
    "default 'random'): a few packs reveal the formula and every other serial. Use a cryptographic random " +
    'number generator.',
  PREDICTABLE_GAPS:
    'Sorted, the serials are spaced by only a few different distances (a fixed step with a little variation, or a ' +
    'few steps in turn): from one pack a handful of guesses finds another. Draw every serial at random instead.',
  FIXED_BLOCK:
    'Some positions hold the same character on every pack (a prefix or a fixed code): they add nothing to ' +
    'security and make the serials longer than they are strong. Allowed, but better left random.',
  SPARSENESS_TOO_LOW:
    'The serials lie close together: on average fewer than 10,000 possible numbers between two packs. Spread ' +
    'them over a larger range (more digits).',
  GAPS_TOO_REGULAR:
    'The distances between sorted serials are more even than chance makes them: the generator may not be ' +
    'random. Check how the serials are made.',
  LOW_ENTROPY:
    'Some characters are used far more often than others, so the serials are easier to guess than their ' +
    'length suggests. Draw every character with equal chance.',
  INSUFFICIENT_SAMPLE:
    'Too few serials to judge how they are spread; only the checks that need no statistics were made. Check a ' +
    'list as long as a real batch.',
};

export interface RandomisationOptions {
  /** Below this many serials, statistical findings say "insufficient sample" instead of guessing. */
  minSample: number;
  maxGuessProbability: number;
  minMeanGap: number;
}

export const DEFAULT_RANDOMISATION_OPTIONS: RandomisationOptions = {
  minSample: 1000,
  maxGuessProbability: 1e-4,
  minMeanGap: 10_000,
};

/** Character codes of GS1 set 82 are below 128: one slot per code and position. */
const CODES = 128;

/** What is kept per serial length: how many serials have it, their characters per position, and their numeric range. */
interface LengthStatistics {
  count: number;
  /** How many of them are all digits; the numeric range below means something only when all are. */
  numeric: number;
  /** The smallest and largest all-digit serial (same length, so compared as strings). */
  min?: string;
  max?: string;
  /** Per position, the characters seen: a 128-bit set in four 32-bit words (position·4 + code ÷ 32). */
  masks: Uint32Array;
  /** Per position, how often each character is used: index position·128 + code. */
  counts: Float64Array;
}

/** How {@link SerialStatistics} is stored (JSON-able; hub-store.ts keeps one per product). */
export interface SerialStatisticsData {
  packs: number;
  lengths: {
    length: number;
    count: number;
    numeric: number;
    min?: string;
    max?: string;
    masks: number[];
    /** Per position, character counts (position·128 + code); zeros at the end left out. */
    counts: number[];
  }[];
  /** Character counts per position, aligned on the left: index position·128 + character code. */
  counts: number[];
}

/**
 * Statistics of a set of serials that can be merged without the serials: a product's whole
 * population is kept as one of these and updated per upload, so an upload is judged against every
 * serial of its product (issue 13: splitting a weak batch into small uploads hides nothing),
 * without reading the product's packs again. Per serial length: the count, the characters used at
 * each position, and for all-digit serials the smallest and largest; per position: how often each
 * character is used (entropy). Adding n serials costs O(n · length).
 */
export class SerialStatistics {
  private constructor(
    readonly packs: number,
    private readonly lengths: ReadonlyMap<number, LengthStatistics>,
    private readonly counts: Float64Array,
  ) {}

  static readonly EMPTY = new SerialStatistics(0, new Map(), new Float64Array(0));

  static of(serials: readonly string[]): SerialStatistics {
    const lengths = new Map<number, LengthStatistics>();
    let counts = new Float64Array(20 * CODES);
    let current: LengthStatistics | undefined;
    let currentLength = -1;
    for (const s of serials) {
      const length = s.length;
      if (length !== currentLength) {
        current = lengths.get(length);
        if (!current) {
          current = {
            count: 0,
            numeric: 0,
            masks: new Uint32Array(length * 4),
            counts: new Float64Array(length * CODES),
          };
          lengths.set(length, current);
        }
        currentLength = length;
        if (length * CODES > counts.length) {
          const grown = new Float64Array(length * CODES);
          grown.set(counts);
          counts = grown;
        }
      }
      const stats = current!;
      let digits = true;
      for (let i = 0; i < length; i++) {
        const c = s.charCodeAt(i) & (CODES - 1);
        counts[i * CODES + c]!++;
        stats.counts[i * CODES + c]!++;
        stats.masks[i * 4 + (c >>> 5)]! |= 1 << (c & 31);
        if (c < 48 || c > 57) digits = false;
      }
      stats.count++;
      if (digits) {
        stats.numeric++;
        if (stats.min === undefined || s < stats.min) stats.min = s;
        if (stats.max === undefined || s > stats.max) stats.max = s;
      }
    }
    return new SerialStatistics(serials.length, lengths, counts);
  }

  static fromJSON(data: SerialStatisticsData): SerialStatistics {
    const lengths = new Map<number, LengthStatistics>();
    for (const { length, masks, counts, ...rest } of data.lengths) {
      const full = new Float64Array(length * CODES);
      full.set(counts);
      lengths.set(length, { ...rest, masks: Uint32Array.from(masks), counts: full });
    }
    return new SerialStatistics(data.packs, lengths, Float64Array.from(data.counts));
  }

  toJSON(): SerialStatisticsData {
    let used = this.counts.length;
    while (used > 0 && this.counts[used - 1] === 0) used--;
    return {
      packs: this.packs,
      lengths: [...this.lengths]
        .sort(([a], [b]) => a - b)
        .map(([length, s]) => ({
          length,
          count: s.count,
          numeric: s.numeric,
          ...(s.min === undefined ? {} : { min: s.min, max: s.max }),
          masks: Array.from(s.masks),
          counts: trimmed(s.counts),
        })),
      counts: Array.from(this.counts.subarray(0, used)),
    };
  }

  /** The statistics of both sets together (serials are unique per product, so counts add). */
  merge(other: SerialStatistics): SerialStatistics {
    const lengths = new Map<number, LengthStatistics>();
    for (const [length, s] of this.lengths)
      lengths.set(length, { ...s, masks: s.masks.slice(), counts: s.counts.slice() });
    for (const [length, o] of other.lengths) {
      const s = lengths.get(length);
      if (!s) {
        lengths.set(length, { ...o, masks: o.masks.slice(), counts: o.counts.slice() });
        continue;
      }
      s.count += o.count;
      for (let i = 0; i < s.counts.length; i++) s.counts[i]! += o.counts[i]!;
      s.numeric += o.numeric;
      for (let i = 0; i < s.masks.length; i++) s.masks[i]! |= o.masks[i]!;
      if (o.min !== undefined && (s.min === undefined || o.min < s.min)) s.min = o.min;
      if (o.max !== undefined && (s.max === undefined || o.max > s.max)) s.max = o.max;
    }
    const counts = new Float64Array(Math.max(this.counts.length, other.counts.length));
    counts.set(this.counts);
    for (let i = 0; i < other.counts.length; i++) counts[i]! += other.counts[i]!;
    return new SerialStatistics(this.packs + other.packs, lengths, counts);
  }

  /** Per position (aligned on the left): how many characters are used there, and their Shannon entropy. */
  positions(): RandomisationReport['positions'] {
    const out: RandomisationReport['positions'] = [];
    for (let position = 0; position * CODES < this.counts.length; position++) {
      const row = this.counts.subarray(position * CODES, (position + 1) * CODES);
      let total = 0;
      let distinct = 0;
      for (const c of row) {
        if (c === 0) continue;
        total += c;
        distinct++;
      }
      if (total === 0) break;
      let entropyBits = 0;
      for (const c of row) if (c > 0) entropyBits -= (c / total) * Math.log2(c / total);
      out.push({ position, distinct, entropyBits });
    }
    return out;
  }

  /**
   * The chance that one made-up serial hits a pack (docs/domain.md §1, "Serial randomisation"):
   * a guesser picks the serial length where packs are densest, so it is the largest, over the
   * lengths used, of (serials of that length) ÷ (the space they are drawn from). The space is the
   * smaller of two estimates that can only overstate it, so that a rejection is never the
   * estimate's doing:
   * - per position: the product of the characters each position can take. Once a length has
   *   `minSample` serials, that is the characters seen; below, a small sample has not seen them
   *   all, and each position counts the whole character classes it uses (digits 10, upper case 26,
   *   lower case 26, set 82's punctuation 20);
   * - for all-digit serials, the numeric range they occupy: one that k uniform serials leave
   *   uncovered only one time in a thousand (RANGE_CONFIDENCE). Serials in one narrow range
   *   (a random walk, a range of 5·10⁷ for a product of 10,000 packs) are as easy to guess as
   *   their density says, however many digits they have.
   */
  guess(
    options: Pick<RandomisationOptions, 'minSample'>,
    scope: 'population' | 'upload' = 'population',
  ): GuessEstimate {
    let best: GuessEstimate = { probability: 0, spaceBits: 0 };
    let totalSpace = 0;
    for (const [length, s] of this.lengths) {
      const rangeSpace =
        s.numeric === s.count && s.count >= 2
          ? Number(BigInt(s.max!) - BigInt(s.min!) + 1n) / rangeCoverage(s.count)
          : Number.POSITIVE_INFINITY;
      let space: number;
      let basis: GuessBasis['basis'];
      if (scope === 'upload') {
        // One upload's serials lying together: what a guesser near them meets, whatever the product's other serials.
        if (rangeSpace === Number.POSITIVE_INFINITY) continue;
        space = rangeSpace;
        basis = 'upload-range';
      } else {
        let positionsBits = 0;
        for (let p = 0; p < length; p++) {
          const mask = s.masks.subarray(p * 4, p * 4 + 4);
          positionsBits += Math.log2(s.count >= options.minSample ? bitCount(mask) : classAlphabet(mask));
        }
        const positionsSpace = 2 ** positionsBits;
        // How evenly each position's characters are used: a handful of decoys adds characters to
        // a position, not entropy. Only from `minSample` serials, where the estimate is steady.
        // Taken only when it is a bit or more below the positions' count: random serials use their
        // characters evenly and are judged by the positions, whatever the estimate's noise.
        const entropy = s.count >= options.minSample ? 2 ** entropyBits(s) : Number.POSITIVE_INFINITY;
        const entropySpace = entropy * 2 <= positionsSpace ? entropy : Number.POSITIVE_INFINITY;
        space = Math.min(positionsSpace, rangeSpace, entropySpace);
        basis =
          space === entropySpace && entropySpace < positionsSpace
            ? 'entropy'
            : rangeSpace < positionsSpace
              ? 'numeric-range'
              : 'positions';
      }
      totalSpace += space;
      const probability = Math.min(1, s.count / space);
      if (probability > best.probability) {
        best = { probability, spaceBits: 0, basis: { basis, serialLength: length, packs: s.count, space } };
      }
    }
    best.spaceBits = totalSpace > 0 ? Math.log2(totalSpace) : 0;
    return best;
  }
}

type GuessBasis = NonNullable<RandomisationReport['guessBasis']>;

/**
 * The Shannon entropy of one serial length's positions, summed, with the Miller–Madow correction
 * ((m − 1) ÷ 2n nats per position, m the characters used) that takes away the plug-in estimate's
 * downward bias, so that honest random serials are not judged weaker than they are.
 */
function entropyBits(s: LengthStatistics): number {
  let bits = 0;
  const length = s.counts.length / CODES;
  for (let p = 0; p < length; p++) {
    let used = 0;
    for (let c = 0; c < CODES; c++) {
      const k = s.counts[p * CODES + c]!;
      if (k === 0) continue;
      used++;
      bits -= (k / s.count) * Math.log2(k / s.count);
    }
    bits += (used - 1) / (2 * s.count * Math.LN2);
  }
  return bits;
}

/** An array without its trailing zeros, for storage. */
function trimmed(values: Float64Array): number[] {
  let used = values.length;
  while (used > 0 && values[used - 1] === 0) used--;
  return Array.from(values.subarray(0, used));
}
interface GuessEstimate {
  probability: number;
  spaceBits: number;
  basis?: GuessBasis;
}

function bitCount(mask: Uint32Array): number {
  let n = 0;
  for (let word of mask) {
    while (word !== 0) {
      word &= word - 1;
      n++;
    }
  }
  return n;
}

/** Set 82's character classes as 128-bit sets (in four 32-bit words), with their sizes. */
const CLASSES = [/[0-9]/, /[A-Z]/, /[a-z]/, /[^0-9A-Za-z]/].map((pattern) => {
  const mask = new Uint32Array(4);
  let size = 0;
  for (const c of CHARSET_82) {
    if (!pattern.test(c)) continue;
    mask[c.charCodeAt(0) >>> 5]! |= 1 << (c.charCodeAt(0) & 31);
    size++;
  }
  return { mask, size };
});

/** How many characters the classes a position uses hold together. */
function classAlphabet(mask: Uint32Array): number {
  let size = 0;
  for (const c of CLASSES) if (mask.some((word, i) => (word & c.mask[i]!) !== 0)) size += c.size;
  return Math.max(size, bitCount(mask));
}

/** The confidence with which the numeric range estimate does not understate the space. */
const RANGE_CONFIDENCE = 0.999;

/**
 * For k serials drawn uniformly from a range, the fraction of it their own range (largest −
 * smallest) covers is Beta(k−1, 2) distributed, with CDF F(x) = k·x^(k−1) − (k−1)·x^k. Returns
 * the x with F(x) = 1 − RANGE_CONFIDENCE: the observed range divided by it overstates the space
 * 999 times in 1,000. (k = 2: about 0.0005; k = 100: 0.91; k = 10,000: 0.99907.)
 */
function rangeCoverage(k: number): number {
  const cdf = (x: number) => x ** (k - 1) * (k - (k - 1) * x);
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (cdf(mid) < 1 - RANGE_CONFIDENCE) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * The heavy half of an upload's analysis, done once per upload outside the write transaction: its
 * serials' statistics (to merge with the product's), and the checks that need the serials
 * themselves (generators in upload order and sorted, gaps). {@link judgeUpload} then judges it
 * against the product's population, cheaply, as often as the write needs (routes/manufacturer.ts
 * does so again inside the transaction, on the population stored then).
 */
export interface UploadAnalysis {
  statistics: SerialStatistics;
  numeric?: NonNullable<RandomisationReport['numeric']>;
  generator?: Finding;
  enough: boolean;
}

export function analyseUpload(
  serials: readonly string[],
  options: RandomisationOptions = DEFAULT_RANDOMISATION_OPTIONS,
): UploadAnalysis {
  const n = serials.length;
  const values = numericValues(serials);
  const sorted = values ? (n >= 2 ? sortedGaps(values) : undefined) : characterGaps(serials);
  const generator = detectGenerator(serials) ?? (sorted && detectSortedGenerator(sorted, options));
  return {
    statistics: SerialStatistics.of(serials),
    ...(sorted?.reading === 'decimal' ? { numeric: sorted.statistics } : {}),
    ...(generator ? { generator } : {}),
    enough: n >= options.minSample,
  };
}

/**
 * The report an upload gets, judged with the product's serials already registered (`population`):
 * the guess probability, entropy and fixed positions over the product's whole population with the
 * upload; generators and gaps over the upload's own serials, where a dense cluster of one upload
 * also counts as the density a guesser near it meets. Returns the population with the upload, to
 * be stored when the upload is.
 */
export function judgeUpload(
  upload: UploadAnalysis,
  population: SerialStatistics = SerialStatistics.EMPTY,
  options: RandomisationOptions = DEFAULT_RANDOMISATION_OPTIONS,
): { report: RandomisationReport; population: SerialStatistics } {
  const whole = population.merge(upload.statistics);
  const n = upload.statistics.packs;
  const findings: Finding[] = [];
  const positions = whole.positions();
  const overall = whole.guess(options);
  const cluster = upload.statistics.guess(options, 'upload');
  const guess = cluster.probability > overall.probability ? { ...cluster, spaceBits: overall.spaceBits } : overall;
  const effectiveEntropyBits = positions.reduce((s, p) => s + p.entropyBits, 0);
  const enoughOverall = whole.packs >= options.minSample;

  if (guess.probability >= options.maxGuessProbability) {
    findings.push({ code: 'GUESS_PROBABILITY_TOO_HIGH', severity: 'reject', detail: guessDetail(guess, options) });
  }
  if (upload.generator) findings.push(upload.generator);
  if (enoughOverall) findings.push(...fixedBlocks(positions));
  else {
    findings.push({
      code: 'INSUFFICIENT_SAMPLE',
      severity: 'info',
      detail: `the product has ${whole.packs} serials with this upload; distribution, entropy and gap findings need at least ${options.minSample}`,
    });
  }
  const numeric = upload.numeric;
  if (numeric && upload.enough) {
    if (numeric.meanGap < options.minMeanGap) {
      findings.push({
        code: 'SPARSENESS_TOO_LOW',
        severity: 'warn',
        detail: `mean gap between sorted serials is ${numeric.meanGap.toFixed(0)}; at least ${options.minMeanGap}`,
      });
    }
    if (numeric.gapVariation < 0.5 && !upload.generator) {
      findings.push({
        code: 'GAPS_TOO_REGULAR',
        severity: 'warn',
        detail: `gaps between sorted serials vary by ${numeric.gapVariation.toFixed(3)} of their mean; random serials vary by about 1`,
      });
    }
  }
  if (enoughOverall && effectiveEntropyBits < Math.log2(whole.packs) + Math.log2(1 / options.maxGuessProbability)) {
    findings.push({
      code: 'LOW_ENTROPY',
      severity: 'warn',
      detail: `effective entropy ${effectiveEntropyBits.toFixed(1)} bits is below log2(packs ÷ ${options.maxGuessProbability})`,
    });
  }
  const verdict = findings.some((f) => f.severity === 'reject')
    ? 'reject'
    : findings.some((f) => f.severity === 'warn')
      ? 'warn'
      : 'pass';
  const report: RandomisationReport = {
    packs: n,
    productPacks: whole.packs,
    guessProbability: guess.probability,
    ...(guess.basis ? { guessBasis: guess.basis } : {}),
    serialSpaceBits: guess.spaceBits,
    effectiveEntropyBits,
    ...(numeric ? { numeric } : {}),
    positions,
    findings: findings.map((f) => ({ ...f, explanation: EXPLANATIONS[f.code] })),
    verdict,
  };
  return { report, population: whole };
}

function guessDetail(
  { probability, basis }: GuessEstimate,
  options: Pick<RandomisationOptions, 'maxGuessProbability'>,
) {
  const figures = `guess probability ${probability.toExponential(2)} ≥ ${options.maxGuessProbability}`;
  if (!basis) return figures;
  const space = basis.space.toExponential(1);
  const where = {
    positions: `the product's ${basis.packs} serials of ${basis.serialLength} characters use a space of about ${space} (characters per position)`,
    'numeric-range': `the product's ${basis.packs} serials of ${basis.serialLength} digits lie in a numeric range of about ${space}`,
    entropy: `the product's ${basis.packs} serials of ${basis.serialLength} characters use their characters so unevenly that they are as easy to guess as ${space} equally likely ones`,
    'upload-range': `this upload's ${basis.packs} serials of ${basis.serialLength} digits lie together in a numeric range of about ${space}`,
  }[basis.basis];
  return `${where}: ${figures}`;
}

/** One upload judged on its own, as if its product had no other serials (tests, tools). */
export function analyseSerials(
  serials: readonly string[],
  options: RandomisationOptions = DEFAULT_RANDOMISATION_OPTIONS,
  population?: SerialStatistics,
): RandomisationReport {
  return judgeUpload(analyseUpload(serials, options), population, options).report;
}

function fixedBlocks(positions: RandomisationReport['positions']): Finding[] {
  const fixed = positions.filter((p) => p.distinct === 1).map((p) => p.position);
  if (fixed.length === 0) return [];
  return [
    {
      code: 'FIXED_BLOCK',
      severity: 'warn',
      detail: `position(s) ${fixed.map((p) => p + 1).join(', ')} hold the same character in every serial`,
    },
  ];
}

/** Serials as integers when all are decimal digits; BigInt keeps 20-digit serials exact. */
function numericValues(serials: readonly string[]): bigint[] | undefined {
  if (serials.length === 0 || !serials.every((s) => /^\d+$/.test(s))) return undefined;
  return serials.map((s) => BigInt(s));
}

interface SortedGaps {
  /** Consecutive differences of the serials' values sorted, as numbers (exact up to 2^53). */
  gaps: Float64Array;
  /** How serials are read as numbers: decimal, or in the characters each position uses (a mixed radix). */
  reading: 'decimal' | 'characters';
  statistics: NonNullable<RandomisationReport['numeric']>;
}

/** One O(n log n) sort serves the gap statistics and the order-free generator checks. */
function sortedGaps(values: bigint[]): SortedGaps {
  const sorted = BigInt64Array.from(values.map((v) => BigInt.asIntN(64, v)));
  const fits = values.every((v) => v < 2n ** 63n);
  const ordered = fits ? Array.from(sorted.sort()) : [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const gaps = new Float64Array(ordered.length - 1);
  for (let i = 1; i < ordered.length; i++) gaps[i - 1] = Number(ordered[i]! - ordered[i - 1]!);
  return { gaps, reading: 'decimal', statistics: gapStatistics(gaps) };
}

function gapStatistics(gaps: Float64Array): NonNullable<RandomisationReport['numeric']> {
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const variance = gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length;
  return { meanGap: mean, gapVariation: mean > 0 ? Math.sqrt(variance) / mean : 0 };
}

/**
 * Serials that are not all digits, read as numbers so that the sorted checks see their generator:
 * the most common serial length's serials, each position a digit in the characters it uses (in
 * code order). "X" followed by a counter is then a counter, letters or not.
 */
function characterGaps(serials: readonly string[]): SortedGaps | undefined {
  const byLength = new Map<number, number>();
  for (const s of serials) byLength.set(s.length, (byLength.get(s.length) ?? 0) + 1);
  let length = 0;
  let most = 0;
  for (const [l, n] of byLength) if (n > most) [length, most] = [l, n];
  if (most < 6) return undefined;
  const digitOf = Array.from({ length }, () => new Int16Array(CODES).fill(-1));
  for (const s of serials) {
    if (s.length !== length) continue;
    for (let p = 0; p < length; p++) digitOf[p]![s.charCodeAt(p) & (CODES - 1)] = 0;
  }
  const radix = digitOf.map((table) => {
    let next = 0;
    for (let c = 0; c < CODES; c++) if (table[c] === 0) table[c] = next++;
    return next;
  });
  const values = new Float64Array(most);
  let k = 0;
  for (const s of serials) {
    if (s.length !== length) continue;
    let v = 0;
    for (let p = 0; p < length; p++) v = v * radix[p]! + digitOf[p]![s.charCodeAt(p) & (CODES - 1)]!;
    values[k++] = v;
  }
  values.sort();
  const gaps = new Float64Array(values.length - 1);
  for (let i = 1; i < values.length; i++) gaps[i - 1] = values[i]! - values[i - 1]!;
  return { gaps, reading: 'characters', statistics: gapStatistics(gaps) };
}

const SAMPLE_FOR_GENERATORS = 64;

/** Counters, fixed increments and linear congruential generators, in upload order. */
function detectGenerator(serials: readonly string[]): Finding | undefined {
  const values = numericValues(serials.slice(0, SAMPLE_FOR_GENERATORS));
  if (!values || values.length < 6) return undefined;
  const step = values[1]! - values[0]!;
  if (values.every((v, i) => i === 0 || v - values[i - 1]! === step)) {
    return {
      code: 'ARITHMETIC_PROGRESSION',
      severity: 'reject',
      detail:
        step === 1n
          ? 'serials are a counter (each is the previous plus 1)'
          : `serials follow a fixed increment of ${step}`,
    };
  }
  const lcg = solveLcg(values);
  if (lcg) {
    return {
      code: 'LINEAR_CONGRUENTIAL_GENERATOR',
      severity: 'reject',
      detail: `each serial is (${lcg.a} × previous + ${lcg.c}) mod ${lcg.m}: a linear congruential generator predicts them all`,
    };
  }
  return undefined;
}

/**
 * Generators whatever the upload order, over the whole upload sorted. Knowing one serial s, a
 * guesser tries s + the gaps that recur; Art. 4(c) is broken when one guess in fewer than 1 ÷
 * `maxGuessProbability` succeeds:
 * - one constant gap: a counter or a fixed increment;
 * - one gap value between a share of consecutive serials of at least `maxGuessProbability`, far
 *   more often than random serials of that density repeat a gap (at least 10 times, and 20 times
 *   what chance gives): counters interleaved or mixed with random decoys, steps taken in turn, a
 *   multiplication modulo a power of ten (whose sorted gaps take three values);
 * - gaps that all lie in a narrow window (a fixed step with jitter): fewer offsets than the limit.
 * Only from SAMPLE_FOR_GENERATORS serials, below which chance can do it.
 */
function detectSortedGenerator(
  { gaps, statistics, reading }: SortedGaps,
  options: Pick<RandomisationOptions, 'maxGuessProbability'>,
): Finding | undefined {
  const n = gaps.length + 1;
  if (n < 6) return undefined;
  const inCharacters = reading === 'characters' ? ' (reading each position in the characters it uses)' : '';
  const step = gaps[0]!;
  if (step > 0 && gaps.every((g) => g === step)) {
    return {
      code: 'ARITHMETIC_PROGRESSION',
      severity: 'reject',
      detail:
        step === 1
          ? `sorted, the serials are a counter (each is the previous plus 1)${inCharacters}, whatever the order they were uploaded in`
          : `sorted, the serials follow a fixed increment of ${step}${inCharacters}, whatever the order they were uploaded in`,
    };
  }
  if (n < SAMPLE_FOR_GENERATORS) return undefined;
  const limit = 1 / options.maxGuessProbability;
  const ordered = Float64Array.from(gaps).sort();
  let top = 0;
  let topGap = 0;
  for (let i = 0, run = 1; i < ordered.length; i++, run++) {
    if (i + 1 < ordered.length && ordered[i + 1] === ordered[i]) continue;
    if (run > top) [top, topGap] = [run, ordered[i]!];
    run = 0;
  }
  const share = top / gaps.length;
  const byChance = (gaps.length / Math.max(1, statistics.meanGap)) * 20;
  if (top >= 10 && top >= byChance && share >= options.maxGuessProbability) {
    return {
      code: 'PREDICTABLE_GAPS',
      severity: 'reject',
      detail:
        `sorted, ${top} of ${gaps.length} consecutive serials differ by exactly ${topGap}${inCharacters}: knowing one ` +
        `serial, adding ${topGap} finds another with a probability of about ${share.toExponential(1)}`,
    };
  }
  if (statistics.gapVariation >= 0.5) return undefined;
  const window = ordered[ordered.length - 1]! - ordered[0]! + 1;
  if (window >= limit) return undefined;
  return {
    code: 'PREDICTABLE_GAPS',
    severity: 'reject',
    detail:
      `sorted, consecutive serials differ by ${ordered[0]} to ${ordered[ordered.length - 1]}${inCharacters}: knowing one serial, ` +
      `${window} guesses find another, a guess probability of about 1/${window}`,
  };
}

/**
 * Recovers x' = (a·x + c) mod m from consecutive outputs (the modulus divides
 * t(k+2)·t(k) − t(k+1)², where t(k) = x(k+1) − x(k)), and accepts it only if it predicts every sample.
 */
function solveLcg(x: bigint[]): { a: bigint; c: bigint; m: bigint } | undefined {
  const t = x.slice(1).map((v, i) => v - x[i]!);
  let m = 0n;
  for (let i = 0; i + 2 < t.length; i++) m = gcd(m, abs(t[i + 2]! * t[i]! - t[i + 1]! * t[i + 1]!));
  // biome-ignore lint/complexity/useMathMinMax: Math.max does not take BigInt
  const max = x.reduce((a, b) => (a > b ? a : b));
  if (m <= max) return undefined;
  for (let i = 0; i + 1 < t.length; i++) {
    const inv = modInverse(mod(t[i]!, m), m);
    if (inv === undefined) continue;
    const a = mod(t[i + 1]! * inv, m);
    const c = mod(x[i + 1]! - a * x[i]!, m);
    if (x.every((v, k) => k === 0 || v === mod(a * x[k - 1]! + c, m))) return { a, c, m };
    return undefined;
  }
  return undefined;
}

const abs = (v: bigint) => (v < 0n ? -v : v);
const mod = (v: bigint, m: bigint) => ((v % m) + m) % m;
function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return abs(a);
}
function modInverse(a: bigint, m: bigint): bigint | undefined {
  let [oldR, r, oldS, s] = [a, m, 1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return oldR === 1n ? mod(oldS, m) : undefined;
}
