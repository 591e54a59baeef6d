import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  appendLeaf,
  consistencyProof,
  EMPTY_ROOT,
  type Frontier,
  frontierOf,
  inclusionProof,
  leafHash,
  nodeHash,
  type PerfectSubtree,
  rangeRoot,
  rootFromFrontier,
  rootFromLeaves,
  type SubtreeReader,
  verifyConsistency,
  verifyInclusion,
} from '../src/merkle.ts';
import {
  COMPACT_TREES,
  CONSISTENCY_PROOFS,
  INCLUSION_PROOFS,
  LEAVES,
  NODE_HASHES,
  ROOTS,
} from './fixtures/merkle-vectors.ts';

const hex = (h: string) => Buffer.from(h, 'hex');
const b64 = (s: string) => Buffer.from(s, 'base64');
const toHex = (bufs: Buffer[]) => bufs.map((b) => b.toString('hex'));

/** The published leaf hashes of the 8-leaf tree. */
const VECTOR_LEAVES = NODE_HASHES[0]!.map(hex);

/** Deterministic leaf hashes for the property checks. */
function leaves(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
}

/**
 * A log kept as a store would keep it: only the subtrees that each append reports as completed.
 * `reader(size)` serves the tree of `size` leaves and refuses any subtree that is missing or
 * reaches past `size`, so a function that reads more than the tree it was asked about fails.
 */
class MemoryLog {
  readonly stored = new Map<string, Buffer>();
  frontier: Frontier = [];
  size = 0;
  readonly appends: PerfectSubtree[][] = [];

  constructor(leafHashes: readonly Buffer[] = []) {
    for (const leaf of leafHashes) this.append(leaf);
  }

  append(leaf: Buffer): PerfectSubtree[] {
    const { frontier, completed } = appendLeaf(this.frontier, this.size, leaf);
    for (const s of completed) this.stored.set(`${s.level}/${s.index}`, s.hash);
    this.frontier = frontier;
    this.size++;
    this.appends.push(completed);
    return completed;
  }

  reader(size = this.size): SubtreeReader {
    return (level, index) => {
      if ((index + 1) * 2 ** level > size) throw new Error(`(${level}, ${index}) reaches past ${size} leaves`);
      const hash = this.stored.get(`${level}/${index}`);
      if (!hash) throw new Error(`(${level}, ${index}) was never completed`);
      return hash;
    };
  }
}

/** RFC 9162 §2.1.3.1 PATH, written from the RFC over the leaves: the reference for small trees. */
function referencePath(m: number, d: Buffer[]): Buffer[] {
  if (d.length === 1) return [];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  if (m < k) return [...referencePath(m, d.slice(0, k)), rootFromLeaves(d.slice(k))];
  return [...referencePath(m - k, d.slice(k)), rootFromLeaves(d.slice(0, k))];
}

/** RFC 9162 §2.1.4.1 SUBPROOF, written from the RFC over the leaves. */
function referenceSubproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [rootFromLeaves(d)];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  if (m <= k) return [...referenceSubproof(m, d.slice(0, k), b), rootFromLeaves(d.slice(k))];
  return [...referenceSubproof(m - k, d.slice(k), false), rootFromLeaves(d.slice(0, k))];
}

/** Every way to spoil a proof by one change: a flipped bit, an element dropped, added or moved. */
function spoiled(proof: Buffer[], root: Buffer): Buffer[][] {
  const variants: Buffer[][] = [];
  for (let i = 0; i < proof.length; i++) {
    const flipped = proof.map((p) => Buffer.from(p));
    flipped[i]![31]! ^= 0x01;
    variants.push(flipped);
    variants.push(proof.filter((_, j) => j !== i));
  }
  variants.push([...proof, root], [root, ...proof], [...proof, EMPTY_ROOT]);
  if (proof.length > 1) variants.push([...proof].reverse());
  return variants;
}

const PROPERTY_SIZES = 300;

describe('leafHash', () => {
  it('hashes each published leaf to its published leaf hash', () => {
    expect(toHex(LEAVES.map((l) => leafHash(hex(l))))).toEqual(NODE_HASHES[0]);
  });
});

describe('nodeHash', () => {
  it('hashes each pair of published subtrees to their published parent', () => {
    for (let level = 1; level < NODE_HASHES.length; level++) {
      const below = NODE_HASHES[level - 1]!.map(hex);
      const parents = NODE_HASHES[level]!.map((_, i) => nodeHash(below[2 * i]!, below[2 * i + 1]!));
      expect(toHex(parents)).toEqual(NODE_HASHES[level]);
    }
  });
});

describe('EMPTY_ROOT', () => {
  it('is the published root of the empty tree, SHA-256 of nothing', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe(ROOTS[0]);
  });
});

describe('rootFromLeaves', () => {
  it('gives the published root for every size from 0 to 8', () => {
    const roots = ROOTS.map((_, n) => rootFromLeaves(VECTOR_LEAVES.slice(0, n)).toString('hex'));
    expect(roots).toEqual(ROOTS);
  });

  it('refuses a leaf hash that is not 32 bytes', () => {
    expect(() => rootFromLeaves([VECTOR_LEAVES[0]!, Buffer.alloc(31)])).toThrow(RangeError);
  });
});

describe('appendLeaf', () => {
  it('completes exactly the published subtrees, the leaf first and then each merge', () => {
    const log = new MemoryLog(VECTOR_LEAVES);
    const completed = log.appends.map((c) => c.map((s) => [s.level, s.index, s.hash.toString('hex')]));
    const nh = (level: number, index: number) => [level, index, NODE_HASHES[level]![index]];
    expect(completed).toEqual([
      [nh(0, 0)],
      [nh(0, 1), nh(1, 0)],
      [nh(0, 2)],
      [nh(0, 3), nh(1, 1), nh(2, 0)],
      [nh(0, 4)],
      [nh(0, 5), nh(1, 2)],
      [nh(0, 6)],
      [nh(0, 7), nh(1, 3), nh(2, 1), nh(3, 0)],
    ]);
  });

  it('keeps the published compact range (frontier) of every size', () => {
    let frontier: Frontier = [];
    const shapes = [frontier];
    for (const [size, leaf] of VECTOR_LEAVES.entries()) {
      frontier = appendLeaf(frontier, size, leaf).frontier;
      shapes.push(frontier);
    }
    const published = COMPACT_TREES.map((tree) =>
      tree.map(([level, index]) => ({ level, index, hash: hex(NODE_HASHES[level]![index]!) })),
    );
    expect(shapes).toEqual(published);
  });

  it('leaves the frontier it was given unchanged', () => {
    const { frontier } = new MemoryLog(VECTOR_LEAVES.slice(0, 3));
    const before = frontier.map((s) => ({ ...s, hash: Buffer.from(s.hash) }));
    appendLeaf(frontier, 3, VECTOR_LEAVES[3]!);
    expect(frontier).toEqual(before);
  });

  it('refuses a frontier that is not that of a tree of `size` leaves', () => {
    const { frontier } = new MemoryLog(VECTOR_LEAVES.slice(0, 3));
    const leaf = VECTOR_LEAVES[3]!;
    const message = /the frontier is not that of a tree of \d+ leaves/;
    expect(() => appendLeaf(frontier, 4, leaf)).toThrow(message);
    expect(() => appendLeaf(frontier, 2, leaf)).toThrow(message);
    expect(() => appendLeaf(frontier.slice(1), 3, leaf)).toThrow(message);
    expect(() => appendLeaf([frontier[0]!, { ...frontier[1]!, index: 3 }], 3, leaf)).toThrow(message);
    expect(() => appendLeaf([frontier[0]!, { ...frontier[1]!, hash: Buffer.alloc(20) }], 3, leaf)).toThrow(message);
  });

  it('refuses a leaf hash that is not 32 bytes, and sizes that are not integers from 0 to 2^53 - 1', () => {
    expect(() => appendLeaf([], 0, Buffer.alloc(33))).toThrow(RangeError);
    expect(() => appendLeaf([], -1, VECTOR_LEAVES[0]!)).toThrow(RangeError);
    expect(() => appendLeaf([], 0.5, VECTOR_LEAVES[0]!)).toThrow(RangeError);
    expect(() => appendLeaf([], Number.NaN, VECTOR_LEAVES[0]!)).toThrow(RangeError);
    // A tree of 2^53 - 1 leaves: 53 subtrees, levels 52 to 0; it cannot take one more leaf.
    const full = Array.from({ length: 53 }, (_, i) => ({ level: 52 - i, index: 2 ** (i + 1) - 2, hash: EMPTY_ROOT }));
    expect(() => appendLeaf(full, Number.MAX_SAFE_INTEGER, VECTOR_LEAVES[0]!)).toThrow(
      'a tree of 9007199254740991 leaves cannot grow',
    );
  });
});

describe('rootFromFrontier', () => {
  it('gives the published root for every size from 0 to 8', () => {
    const log = new MemoryLog();
    const roots = [rootFromFrontier(log.frontier).toString('hex')];
    for (const leaf of VECTOR_LEAVES) {
      log.append(leaf);
      roots.push(rootFromFrontier(log.frontier).toString('hex'));
    }
    expect(roots).toEqual(ROOTS);
  });

  it(`agrees with rootFromLeaves for every size up to ${PROPERTY_SIZES}`, () => {
    const all = leaves(PROPERTY_SIZES);
    const log = new MemoryLog();
    for (const [i, leaf] of all.entries()) {
      log.append(leaf);
      expect(rootFromFrontier(log.frontier)).toEqual(rootFromLeaves(all.slice(0, i + 1)));
    }
  });
});

describe('frontierOf', () => {
  it('reads the frontier that the appends kept, for every size, from that size’s subtrees only', () => {
    const log = new MemoryLog();
    const frontiers = [log.frontier];
    for (const leaf of leaves(70)) {
      log.append(leaf);
      frontiers.push(log.frontier);
    }
    for (const [size, frontier] of frontiers.entries()) expect(frontierOf(size, log.reader(size))).toEqual(frontier);
  });

  it('refuses a size that is not an integer from 0 to 2^53 - 1', () => {
    const read = new MemoryLog(VECTOR_LEAVES).reader();
    for (const size of [-1, 1.5, 2 ** 53, Number.POSITIVE_INFINITY])
      expect(() => frontierOf(size, read)).toThrow(RangeError);
  });
});

describe('rangeRoot', () => {
  const log = new MemoryLog(VECTOR_LEAVES);
  const read = log.reader();

  it('gives the published root of each prefix and the published hash of each perfect subtree', () => {
    expect(ROOTS.map((_, n) => rangeRoot(0, n, read).toString('hex'))).toEqual(ROOTS);
    for (const [level, hashes] of NODE_HASHES.entries()) {
      const width = 2 ** level;
      expect(hashes.map((_, i) => rangeRoot(i * width, (i + 1) * width, read).toString('hex'))).toEqual(hashes);
    }
  });

  it('is the empty root for an empty range', () => {
    expect(rangeRoot(5, 5, read)).toEqual(EMPTY_ROOT);
  });

  it('agrees with rootFromLeaves on every range a proof can ask for, in a tree of 100 leaves', () => {
    const all = leaves(100);
    const big = new MemoryLog(all);
    let checked = 0;
    for (let start = 0; start < 100; start++) {
      for (let end = start + 1; end <= 100; end++) {
        let k = 1;
        while (k * 2 < end - start) k *= 2;
        if (start % k !== 0) continue;
        expect(rangeRoot(start, end, big.reader(end))).toEqual(rootFromLeaves(all.slice(start, end)));
        checked++;
      }
    }
    expect(checked).toBe(673);
  });

  it('refuses a range whose left part is not a stored subtree, instead of reading leaf after leaf', () => {
    expect(() => rangeRoot(1, 4, read)).toThrow('[1, 4) is no subtree of a log: it must start at a multiple of 2');
    expect(() => rangeRoot(2, 7, read)).toThrow('[2, 7) is no subtree of a log: it must start at a multiple of 4');
  });

  it('refuses reversed ranges and bounds that are not integers from 0 to 2^53 - 1', () => {
    expect(() => rangeRoot(4, 3, read)).toThrow('range [4, 3) ends before it starts');
    expect(() => rangeRoot(-1, 3, read)).toThrow(RangeError);
    expect(() => rangeRoot(0, 2 ** 53, read)).toThrow(RangeError);
  });
});

describe('inclusionProof', () => {
  const log = new MemoryLog(VECTOR_LEAVES);

  it('gives every published inclusion proof', () => {
    for (const { index, size, proof } of INCLUSION_PROOFS) {
      expect(toHex(inclusionProof(index, size, log.reader(size))), `PATH(${index}, D[${size}])`).toEqual(proof);
    }
  });

  it('agrees with the RFC’s PATH over the leaves for every leaf of every tree up to 40 leaves', () => {
    const all = leaves(40);
    const small = new MemoryLog(all);
    for (let size = 1; size <= 40; size++) {
      const d = all.slice(0, size);
      for (let index = 0; index < size; index++) {
        expect(inclusionProof(index, size, small.reader(size))).toEqual(referencePath(index, d));
      }
    }
  });

  it(`proves every leaf of every tree up to ${PROPERTY_SIZES} leaves against rootFromLeaves`, () => {
    const all = leaves(PROPERTY_SIZES);
    const big = new MemoryLog(all);
    for (let size = 1; size <= PROPERTY_SIZES; size++) {
      const root = rootFromLeaves(all.slice(0, size));
      const read = big.reader(size);
      for (let index = 0; index < size; index++) {
        expect(verifyInclusion(index, size, all[index]!, inclusionProof(index, size, read), root)).toBe(true);
      }
    }
  });

  it('proves the newest leaf right after its append, from the subtrees the appends completed', () => {
    const all = leaves(130);
    const growing = new MemoryLog();
    for (const [index, leaf] of all.entries()) {
      growing.append(leaf);
      const proof = inclusionProof(index, index + 1, growing.reader());
      expect(verifyInclusion(index, index + 1, leaf, proof, rootFromFrontier(growing.frontier))).toBe(true);
    }
  });

  it('refuses an index outside the tree, and arguments that are not integers from 0 to 2^53 - 1', () => {
    const read = log.reader();
    expect(() => inclusionProof(8, 8, read)).toThrow('leaf 8 is not in a tree of 8 leaves');
    expect(() => inclusionProof(0, 0, read)).toThrow('leaf 0 is not in a tree of 0 leaves');
    expect(() => inclusionProof(-1, 8, read)).toThrow('index must be an integer from 0 to 2^53 - 1, got -1');
    expect(() => inclusionProof(0, 2 ** 53, read)).toThrow(RangeError);
    expect(() => inclusionProof(1.5, 8, read)).toThrow(RangeError);
  });

  it('fails when the store lacks a subtree it needs (the reader throws)', () => {
    const read: SubtreeReader = () => {
      throw new Error('not stored');
    };
    expect(() => inclusionProof(0, 2, read)).toThrow('not stored');
    expect(() => inclusionProof(0, 2, () => Buffer.alloc(31))).toThrow(
      'the stored subtree (0, 1) is not a 32-byte hash',
    );
  });
});

describe('consistencyProof', () => {
  const log = new MemoryLog(VECTOR_LEAVES);

  it('gives every published consistency proof', () => {
    for (const { first, second, proof } of CONSISTENCY_PROOFS) {
      expect(toHex(consistencyProof(first, second, log.reader(second))), `PROOF(${first}, D[${second}])`).toEqual(
        proof,
      );
    }
  });

  it('agrees with the RFC’s SUBPROOF over the leaves for every pair of sizes up to 40 leaves', () => {
    const all = leaves(40);
    const small = new MemoryLog(all);
    for (let second = 1; second <= 40; second++) {
      for (let first = 1; first < second; first++) {
        const expected = referenceSubproof(first, all.slice(0, second), true);
        expect(consistencyProof(first, second, small.reader(second))).toEqual(expected);
      }
    }
  });

  it(`proves every pair of sizes up to ${PROPERTY_SIZES} leaves against rootFromLeaves`, () => {
    const all = leaves(PROPERTY_SIZES);
    const big = new MemoryLog(all);
    const roots = Array.from({ length: PROPERTY_SIZES + 1 }, (_, n) => rootFromLeaves(all.slice(0, n)));
    for (let second = 0; second <= PROPERTY_SIZES; second++) {
      const read = big.reader(second);
      for (let first = 0; first <= second; first++) {
        const proof = consistencyProof(first, second, read);
        expect(verifyConsistency(first, second, roots[first]!, roots[second]!, proof)).toBe(true);
      }
    }
  });

  it('is empty from the empty tree and between equal sizes', () => {
    expect(consistencyProof(0, 8, log.reader())).toEqual([]);
    expect(consistencyProof(0, 0, log.reader())).toEqual([]);
    expect(consistencyProof(5, 5, log.reader())).toEqual([]);
  });

  it('refuses a first size larger than the second, and sizes that are not integers from 0 to 2^53 - 1', () => {
    const read = log.reader();
    expect(() => consistencyProof(5, 4, read)).toThrow('tree size 5 is larger than 4');
    expect(() => consistencyProof(-1, 4, read)).toThrow(RangeError);
    expect(() => consistencyProof(1, 2 ** 53, read)).toThrow(RangeError);
  });
});

/** transparency-dev/merkle's probes (testdata/), verified against its `wantErr`. */
const PROBES = JSON.parse(
  readFileSync(new URL('./fixtures/transparency-dev-merkle-probes.json', import.meta.url), 'utf8'),
) as {
  inclusion: Record<
    string,
    { leafIdx: number; treeSize: number; root: string; leafHash: string; proof: string[] | null; wantErr: boolean }
  >;
  consistency: Record<
    string,
    { size1: number; size2: number; root1: string; root2: string; proof: string[] | null; wantErr: boolean }
  >;
};

/** A verification outcome, with a RangeError (an index past 2^53, as 2^64 - 1 is) as a refusal. */
function accepted(verify: () => boolean): boolean {
  try {
    return verify();
  } catch (err) {
    if (err instanceof RangeError) return false;
    throw err;
  }
}

describe('verifyInclusion', () => {
  it('accepts every published inclusion proof', () => {
    for (const { index, size, proof } of INCLUSION_PROOFS) {
      expect(verifyInclusion(index, size, VECTOR_LEAVES[index]!, proof.map(hex), hex(ROOTS[size]!))).toBe(true);
    }
  });

  it('decides each of transparency-dev/merkle’s inclusion probes as published', () => {
    const entries = Object.entries(PROBES.inclusion);
    expect(entries.length).toBe(98);
    const decided = entries.map(([path, p]) => {
      const ok = accepted(() =>
        verifyInclusion(p.leafIdx, p.treeSize, b64(p.leafHash), (p.proof ?? []).map(b64), b64(p.root)),
      );
      return [path, ok];
    });
    expect(decided).toEqual(entries.map(([path, p]) => [path, !p.wantErr]));
  });

  it('refuses every one-change spoiling of every proof, and wrong indices, sizes, leaves and roots', () => {
    const all = leaves(80);
    const log = new MemoryLog(all);
    for (let size = 1; size <= 40; size++) {
      const root = rootFromLeaves(all.slice(0, size));
      for (let index = 0; index < size; index++) {
        const proof = inclusionProof(index, size, log.reader(size));
        const leaf = all[index]!;
        for (const bad of spoiled(proof, root)) expect(verifyInclusion(index, size, leaf, bad, root)).toBe(false);
        for (const other of [index - 1, index + 1, index ^ 2].filter((i) => i >= 0 && i !== index)) {
          expect(verifyInclusion(other, size, leaf, proof, root), `index ${other} for ${index} of ${size}`).toBe(false);
        }
        // A proof only ties hashes together, so one of the same length can pass for another size:
        // PATH(0, D_3) = [h1, h2] is PATH(0, D_4) if h2 were MTH(D[2:4]). Sizes whose proofs have
        // another length must fail.
        for (const other of [size - 1, size + 1, size * 2]) {
          if (other <= index || inclusionProof(index, other, log.reader(other)).length === proof.length) continue;
          expect(verifyInclusion(index, other, leaf, proof, root), `size ${other} for ${index} of ${size}`).toBe(false);
        }
        expect(verifyInclusion(index, size, all[(index + 1) % 40]!, proof, root)).toBe(false);
        expect(verifyInclusion(index, size, leaf, proof, EMPTY_ROOT)).toBe(false);
      }
    }
  });

  it('refuses hashes that are not 32 bytes, and answers false for an index outside the tree', () => {
    const [leaf, root] = [VECTOR_LEAVES[0]!, hex(ROOTS[1]!)];
    expect(verifyInclusion(0, 1, leaf, [], root)).toBe(true);
    expect(verifyInclusion(0, 1, leaf.subarray(1), [], root)).toBe(false);
    expect(verifyInclusion(0, 1, leaf, [], root.subarray(1))).toBe(false);
    expect(verifyInclusion(0, 2, leaf, [Buffer.alloc(31)], root)).toBe(false);
    expect(verifyInclusion(1, 1, leaf, [], root)).toBe(false);
    expect(verifyInclusion(0, 0, leaf, [], root)).toBe(false);
  });

  it('throws a RangeError for an index or size that is not an integer from 0 to 2^53 - 1', () => {
    const [leaf, root] = [VECTOR_LEAVES[0]!, hex(ROOTS[1]!)];
    expect(() => verifyInclusion(-1, 1, leaf, [], root)).toThrow('index must be an integer from 0 to 2^53 - 1, got -1');
    expect(() => verifyInclusion(0, 2 ** 53, leaf, [], root)).toThrow(
      'size must be an integer from 0 to 2^53 - 1, got 9007199254740992',
    );
    expect(() => verifyInclusion(0.5, 1, leaf, [], root)).toThrow(RangeError);
  });
});

describe('verifyConsistency', () => {
  it('accepts every published consistency proof', () => {
    for (const { first, second, proof } of CONSISTENCY_PROOFS) {
      expect(verifyConsistency(first, second, hex(ROOTS[first]!), hex(ROOTS[second]!), proof.map(hex))).toBe(true);
    }
  });

  /**
   * Where this module decides otherwise than transparency-dev/merkle's Go verifier, on purpose:
   * Go compares equal roots of equal sizes whatever their length; here a root is 32 bytes, and
   * the probe's roots are the 12 bytes "don't care 2". (Go also refuses every proof from size 0
   * as "meaningless", where an empty proof from the empty root holds here; no probe has both a
   * 32-byte second root and an empty proof from size 0, so none shows it.)
   */
  const DISAGREEMENTS: Record<string, boolean> = {
    'additional/sizes-are-equal-one-and-proof-is-empty.json': false,
  };

  it('decides each of transparency-dev/merkle’s consistency probes as published, but one on purpose', () => {
    const entries = Object.entries(PROBES.consistency);
    expect(entries.length).toBe(98);
    const decided = entries.map(([path, p]) => {
      const ok = accepted(() =>
        verifyConsistency(p.size1, p.size2, b64(p.root1), b64(p.root2), (p.proof ?? []).map(b64)),
      );
      return [path, ok];
    });
    expect(decided).toEqual(entries.map(([path, p]) => [path, DISAGREEMENTS[path] ?? !p.wantErr]));
  });

  it('refuses every one-change spoiling of every proof, and wrong sizes and roots', () => {
    const all = leaves(41);
    const log = new MemoryLog(all);
    const roots = Array.from({ length: 41 }, (_, n) => rootFromLeaves(all.slice(0, n)));
    for (let second = 2; second <= 40; second++) {
      for (let first = 1; first < second; first++) {
        const proof = consistencyProof(first, second, log.reader(second));
        const [r1, r2] = [roots[first]!, roots[second]!];
        for (const bad of spoiled(proof, r2)) expect(verifyConsistency(first, second, r1, r2, bad)).toBe(false);
        expect(verifyConsistency(first, second, r2, r1, proof)).toBe(false);
        expect(verifyConsistency(first, second, roots[first - 1]!, r2, proof)).toBe(false);
        expect(verifyConsistency(first, second, r1, roots[second - 1]!, proof)).toBe(false);
        expect(verifyConsistency(second, first, r1, r2, proof)).toBe(false);
        // As for inclusion, a proof of the same length can pass for other sizes; others must fail.
        for (const [f, s] of [
          [first - 1, second],
          [first + 1, second],
          [first, second + 1],
          [first, second - 1],
        ] as const) {
          if (f < 1 || f >= s || consistencyProof(f, s, log.reader(s)).length === proof.length) continue;
          expect(verifyConsistency(f, s, r1, r2, proof), `${f}→${s} with PROOF(${first}, D[${second}])`).toBe(false);
        }
      }
    }
  });

  it('holds from the empty tree only with an empty proof and the empty root, and between equal sizes only for equal roots', () => {
    const [r1, r8] = [hex(ROOTS[1]!), hex(ROOTS[8]!)];
    expect(verifyConsistency(0, 8, EMPTY_ROOT, r8, [])).toBe(true);
    expect(verifyConsistency(0, 8, r1, r8, [])).toBe(false);
    expect(verifyConsistency(0, 8, EMPTY_ROOT, r8, [r1])).toBe(false);
    expect(verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])).toBe(true);
    expect(verifyConsistency(0, 0, EMPTY_ROOT, r1, [])).toBe(false);
    expect(verifyConsistency(8, 8, r8, r8, [])).toBe(true);
    expect(verifyConsistency(8, 8, r8, r1, [])).toBe(false);
    expect(verifyConsistency(8, 8, r8, r8, [r1])).toBe(false);
  });

  it('throws a RangeError for sizes that are not integers from 0 to 2^53 - 1', () => {
    const r = hex(ROOTS[1]!);
    expect(() => verifyConsistency(-1, 1, r, r, [])).toThrow('first must be an integer from 0 to 2^53 - 1, got -1');
    expect(() => verifyConsistency(1, 2 ** 53, r, r, [])).toThrow(RangeError);
    expect(() => verifyConsistency(1, Number.NaN, r, r, [])).toThrow(RangeError);
  });
});
