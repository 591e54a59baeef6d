/**
 * Serial number randomisation checks (Delegated Regulation (EU) 2016/161 Art. 4(c): the chance of
 * guessing a valid serial must be below 1 in 10,000; EMVO's URS adds "equally distributed,
 * independent, not built by an easily found algorithm"). Pure statistics over one batch's serials
 * (or a product's, across batches). Generators are looked for twice: in the first serials as uploaded
 * (a linear congruential generator shows only in its own order), and over the whole set sorted, so
 * that shuffling a counter or a fixed step before the upload hides nothing (issue 13).
 */

import type { components } from '../../openapi/generated/hub.ts';

/**
 * The report an upload is answered with (openapi/hub.yaml `RandomisationReport`): `guessProbability`
 * is packs ÷ the size of the serial space the serials actually use (per position), `serialSpaceBits`
 * its log2, `effectiveEntropyBits` the sum over positions of the Shannon entropy of the characters
 * used there; for numeric serials `meanGap` (at least 10,000, docs/domain.md §1) and `gapVariation`
 * (the coefficient of variation of the sorted gaps: about 1 for random serials, 0 for a fixed
 * increment); `verdict` is `reject` when a finding breaks the regulation, `warn` when one is only
 * inadvisable, else `pass`.
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

export function analyseSerials(
  serials: readonly string[],
  options: RandomisationOptions = DEFAULT_RANDOMISATION_OPTIONS,
): RandomisationReport {
  const n = serials.length;
  const findings: Finding[] = [];
  const { positions, spaceBits } = positionStatistics(serials);
  const guessProbability = n === 0 ? 0 : Math.min(1, 2 ** (Math.log2(n) - spaceBits));
  const effectiveEntropyBits = positions.reduce((s, p) => s + p.entropyBits, 0);
  const enough = n >= options.minSample;

  if (guessProbability >= options.maxGuessProbability) {
    findings.push({
      code: 'GUESS_PROBABILITY_TOO_HIGH',
      severity: 'reject',
      detail: `${n} serials in a space of about 2^${spaceBits.toFixed(1)}: guess probability ${guessProbability.toExponential(2)} ≥ ${options.maxGuessProbability}`,
    });
  }
  const values = numericValues(serials);
  const sorted = values && n >= 2 ? sortedGaps(values) : undefined;
  const generator = detectGenerator(serials) ?? (sorted && detectSortedGenerator(sorted, options));
  if (generator) findings.push(generator);
  if (enough) findings.push(...fixedBlocks(positions));
  else {
    findings.push({
      code: 'INSUFFICIENT_SAMPLE',
      severity: 'info',
      detail: `${n} serials; distribution, entropy and gap findings need at least ${options.minSample}`,
    });
  }

  const numeric = sorted?.statistics;
  if (numeric) {
    if (enough && numeric.meanGap < options.minMeanGap) {
      findings.push({
        code: 'SPARSENESS_TOO_LOW',
        severity: 'warn',
        detail: `mean gap between sorted serials is ${numeric.meanGap.toFixed(0)}; at least ${options.minMeanGap}`,
      });
    }
    if (enough && numeric.gapVariation < 0.5 && !generator) {
      findings.push({
        code: 'GAPS_TOO_REGULAR',
        severity: 'warn',
        detail: `gaps between sorted serials vary by ${numeric.gapVariation.toFixed(3)} of their mean; random serials vary by about 1`,
      });
    }
  }
  if (enough && effectiveEntropyBits < Math.log2(n) + Math.log2(1 / options.maxGuessProbability)) {
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
  return {
    packs: n,
    guessProbability,
    serialSpaceBits: spaceBits,
    effectiveEntropyBits,
    ...(numeric ? { numeric } : {}),
    positions,
    findings: findings.map((f) => ({ ...f, explanation: EXPLANATIONS[f.code] })),
    verdict,
  };
}

/** Per-position character counts, aligned on the left; the space is summed over the serial lengths used. */
function positionStatistics(serials: readonly string[]) {
  const counts: Map<number, number>[] = [];
  const byLength = new Map<number, Set<number>[]>();
  for (const s of serials) {
    let sets = byLength.get(s.length);
    if (!sets) {
      sets = Array.from({ length: s.length }, () => new Set<number>());
      byLength.set(s.length, sets);
    }
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      sets[i]!.add(c);
      let m = counts[i];
      if (!m) {
        m = new Map();
        counts[i] = m;
      }
      m.set(c, (m.get(c) ?? 0) + 1);
    }
  }
  let space = 0;
  for (const sets of byLength.values()) space += 2 ** sets.reduce((bits, set) => bits + Math.log2(set.size), 0);
  const positions = counts.map((m, position) => {
    const total = [...m.values()].reduce((a, b) => a + b, 0);
    const entropyBits = [...m.values()].reduce((h, c) => h - (c / total) * Math.log2(c / total), 0);
    return { position, distinct: m.size, entropyBits };
  });
  return { positions, spaceBits: space > 0 ? Math.log2(space) : 0 };
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
  /** The serials' values in ascending order. */
  ordered: bigint[];
  /** ordered[i + 1] − ordered[i], as numbers (exact up to 2^53). */
  gaps: Float64Array;
  statistics: NonNullable<RandomisationReport['numeric']>;
}

/** One O(n log n) sort serves the gap statistics and the order-free generator checks. */
function sortedGaps(values: bigint[]): SortedGaps {
  const sorted = BigInt64Array.from(values.map((v) => BigInt.asIntN(64, v)));
  const fits = values.every((v) => v < 2n ** 63n);
  const ordered = fits ? Array.from(sorted.sort()) : [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const gaps = new Float64Array(ordered.length - 1);
  for (let i = 1; i < ordered.length; i++) gaps[i - 1] = Number(ordered[i]! - ordered[i - 1]!);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const variance = gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length;
  return { ordered, gaps, statistics: { meanGap: mean, gapVariation: mean > 0 ? Math.sqrt(variance) / mean : 0 } };
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
 * Generators whatever the upload order, over the whole set sorted: a counter or a fixed increment is
 * one constant gap; a fixed increment with a little jitter, or a few steps taken in turn, leaves
 * gaps of few distinct values or within a narrow window. Knowing one serial s, trying s + each such
 * gap (or each offset in the window) finds the next pack for certain, so one guess in that many
 * succeeds: Art. 4 is broken when that is fewer than 1 ÷ `maxGuessProbability` guesses. Random gaps
 * vary by about their mean (`gapVariation` ≈ 1), so only sets whose gaps vary by less than half of
 * it are looked at, and only from SAMPLE_FOR_GENERATORS serials, below which chance can do it.
 */
function detectSortedGenerator(
  { ordered, gaps, statistics }: SortedGaps,
  options: Pick<RandomisationOptions, 'maxGuessProbability'>,
): Finding | undefined {
  if (ordered.length < 6) return undefined;
  const step = ordered[1]! - ordered[0]!;
  if (step > 0n && ordered.every((v, i) => i === 0 || v - ordered[i - 1]! === step)) {
    return {
      code: 'ARITHMETIC_PROGRESSION',
      severity: 'reject',
      detail:
        step === 1n
          ? 'sorted, the serials are a counter (each is the previous plus 1), whatever the order they were uploaded in'
          : `sorted, the serials follow a fixed increment of ${step}, whatever the order they were uploaded in`,
    };
  }
  if (ordered.length < SAMPLE_FOR_GENERATORS || statistics.gapVariation >= 0.5) return undefined;
  const limit = 1 / options.maxGuessProbability;
  const distinct = new Set<number>();
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const g of gaps) {
    if (g < min) min = g;
    if (g > max) max = g;
    if (distinct.size < limit) distinct.add(g);
  }
  const tries = Math.min(distinct.size, max - min + 1);
  if (tries >= limit) return undefined;
  return {
    code: 'PREDICTABLE_GAPS',
    severity: 'reject',
    detail:
      `sorted, consecutive serials differ by only ${distinct.size} different gaps (${min} to ${max}): knowing one serial, ` +
      `${tries} guesses find another, a guess probability of about 1/${tries}`,
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
