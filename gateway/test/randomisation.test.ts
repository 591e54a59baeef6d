import { randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { analyseSerials } from '../src/randomisation.ts';

const N = 20_000;
const ALPHANUMERIC = 'ABCDEFGHJKLMNPQRSTUVWXYZ0123456789';
const csprngSerial = (length: number, alphabet = ALPHANUMERIC) =>
  Array.from(randomBytes(length), (b) => alphabet[b % alphabet.length]).join('');
const codes = (r: ReturnType<typeof analyseSerials>) => r.findings.map((f) => f.code);

describe('analyseSerials', () => {
  it('passes serials drawn from a CSPRNG', () => {
    const report = analyseSerials(Array.from({ length: N }, () => csprngSerial(12)));
    expect(report.verdict).toBe('pass');
    expect(report.findings).toEqual([]);
    expect(report.guessProbability).toBeLessThan(1e-10);
    expect(report.effectiveEntropyBits).toBeGreaterThan(55);
  });

  it('passes random 16-digit numeric serials, with gaps that vary as random gaps do', () => {
    const serial = () => `${randomInt(10_000_000, 100_000_000)}${String(randomInt(0, 100_000_000)).padStart(8, '0')}`;
    const report = analyseSerials(Array.from({ length: N }, serial));
    expect(report.verdict).toBe('pass');
    expect(report.numeric!.meanGap).toBeGreaterThan(10_000);
    expect(report.numeric!.gapVariation).toBeGreaterThan(0.8);
  });

  it('rejects a counter', () => {
    const report = analyseSerials(Array.from({ length: N }, (_, i) => String(100_000 + i)));
    expect(report.verdict).toBe('reject');
    expect(codes(report)).toContain('ARITHMETIC_PROGRESSION');
    expect(report.findings.find((f) => f.code === 'ARITHMETIC_PROGRESSION')!.detail).toContain('counter');
    expect(codes(report)).toContain('GUESS_PROBABILITY_TOO_HIGH');
  });

  it('rejects a fixed increment of 10,007 even though it is sparse enough', () => {
    const report = analyseSerials(Array.from({ length: N }, (_, i) => String(1_000_000_000 + i * 10_007)));
    expect(report.verdict).toBe('reject');
    expect(report.findings.find((f) => f.code === 'ARITHMETIC_PROGRESSION')!.detail).toContain('10007');
    expect(report.numeric!.meanGap).toBe(10_007);
    expect(report.numeric!.gapVariation).toBe(0);
  });

  describe('predictable sets uploaded in another order (issue 13)', () => {
    /** A constant step of 10,001 from a random 12-digit start: sparse enough, and entirely predictable. */
    const stepped = (n: number) => {
      const start = BigInt(randomInt(100_000_000_000, 900_000_000_000));
      return Array.from({ length: n }, (_, i) => String(start + BigInt(i) * 10_001n));
    };
    const shuffled = <T>(xs: readonly T[]) => {
      const out = [...xs];
      for (let i = out.length - 1; i > 0; i--) {
        const j = randomInt(0, i + 1);
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    };

    it('rejects a constant step uploaded shuffled, as it rejects it in order', () => {
      const inOrder = stepped(N);
      const mixed = analyseSerials(shuffled(inOrder));
      expect(mixed.verdict).toBe('reject');
      expect(mixed.findings.find((f) => f.code === 'ARITHMETIC_PROGRESSION')!.detail).toContain('10001');
      expect(analyseSerials(inOrder).verdict).toBe('reject');
    });

    it('rejects a short shuffled constant step too', () => {
      expect(codes(analyseSerials(shuffled(stepped(20))))).toContain('ARITHMETIC_PROGRESSION');
    });

    it('rejects a near-constant step (a fixed step plus a little jitter) uploaded shuffled', () => {
      const serials = stepped(N).map((s) => String(BigInt(s) + BigInt(randomInt(0, 50))));
      const report = analyseSerials(shuffled(serials));
      expect(report.verdict).toBe('reject');
      expect(codes(report)).toContain('PREDICTABLE_GAPS');
    });

    it('rejects a small set of distinct steps uploaded shuffled', () => {
      const start = 300_000_000_000n;
      let x = start;
      const serials = Array.from({ length: N }, () => {
        x += [10_001n, 20_002n, 30_003n][randomInt(0, 3)]!;
        return String(x);
      });
      const report = analyseSerials(shuffled(serials));
      expect(report.verdict).toBe('reject');
      expect(report.findings.find((f) => f.code === 'PREDICTABLE_GAPS')!.detail).toContain('3 different gaps');
    });

    it('still passes random numeric serials, and finds no generator in dense random ones', () => {
      const random = () => String(randomInt(100_000_000_000, 900_000_000_000));
      expect(analyseSerials(Array.from({ length: N }, random)).verdict).toBe('pass');
      expect(analyseSerials(Array.from({ length: 100 }, random)).findings.map((f) => f.code)).toEqual([
        'INSUFFICIENT_SAMPLE',
      ]);
      // 20,000 random serials in 10^8: a mean gap of about 5,000, too dense (rejected for the
      // guess probability), but made by no generator.
      const dense = analyseSerials(Array.from({ length: N }, () => String(randomInt(100_000_000, 200_000_000))));
      expect(codes(dense)).toContain('GUESS_PROBABILITY_TOO_HIGH');
      expect(codes(dense)).not.toContain('PREDICTABLE_GAPS');
      expect(codes(dense)).not.toContain('ARITHMETIC_PROGRESSION');
    });
  });

  it('rejects serials from a linear congruential generator and names its parameters', () => {
    let x = 12_345n;
    const serials = Array.from({ length: N }, () => {
      x = (1_103_515_245n * x + 12_345n) % 2_147_483_648n;
      return String(x).padStart(10, '0');
    });
    const report = analyseSerials(serials);
    expect(report.verdict).toBe('reject');
    const lcg = report.findings.find((f) => f.code === 'LINEAR_CONGRUENTIAL_GENERATOR');
    expect(lcg?.detail).toContain('1103515245');
    expect(lcg?.detail).toContain('mod 2147483648');
  });

  it('flags fixed blocks', () => {
    const report = analyseSerials(Array.from({ length: N }, () => `PK-${csprngSerial(10)}`));
    expect(codes(report)).toContain('FIXED_BLOCK');
    expect(report.findings.find((f) => f.code === 'FIXED_BLOCK')!.detail).toContain('position(s) 1, 2, 3');
    expect(report.verdict).toBe('warn');
  });

  it('rejects a serial space too small for the batch', () => {
    const report = analyseSerials(Array.from({ length: N }, () => csprngSerial(4, '0123456789')));
    expect(report.verdict).toBe('reject');
    expect(codes(report)).toContain('GUESS_PROBABILITY_TOO_HIGH');
    expect(report.guessProbability).toBeGreaterThan(0.5);
  });

  it('says "insufficient sample" below the minimum instead of guessing', () => {
    const report = analyseSerials(Array.from({ length: 50 }, () => csprngSerial(12)));
    expect(codes(report)).toEqual(['INSUFFICIENT_SAMPLE']);
    expect(report.verdict).toBe('pass');
    const fixed = analyseSerials(Array.from({ length: 50 }, () => `PK-${csprngSerial(10)}`));
    expect(codes(fixed)).not.toContain('FIXED_BLOCK');
  });
});
