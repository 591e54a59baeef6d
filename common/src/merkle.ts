/**
 * The Merkle Hash Tree of RFC 9162 (Certificate Transparency 2.0) §2.1, with SHA-256: tree
 * hashes, inclusion and consistency proofs, and their verification. Pure: no I/O. The log that
 * stores the tree hands in a {@link SubtreeReader}; this module says which perfect subtrees an
 * append completes ({@link appendLeaf}) and which ones a root or a proof reads, never more than
 * O(log n) of them.
 *
 * Where it stops: what a leaf is (the bytes hashed by {@link leafHash}), where subtrees are
 * stored, and which roots a verifier trusts (a signed checkpoint, checkpoint.ts) are the
 * callers'.
 *
 * Sizes and indices are JavaScript numbers, so integers from 0 to 2^53 - 1; every argument outside
 * that range, or outside the tree, throws a RangeError. Bit operators work on 32 bits in
 * JavaScript, so the arithmetic below divides and takes remainders instead of shifting.
 *
 * RFC 9162 §2.1.1, the Merkle Tree Hash of an ordered list of n inputs D_n = {d[0], …, d[n-1]}:
 *
 * ```text
 * The hash of an empty list is the hash of an empty string:
 *     MTH({}) = HASH()
 * The hash of a list with one entry (also known as a leaf hash) is:
 *     MTH({d[0]}) = HASH(0x00 || d[0])
 * For n > 1, let k be the largest power of two smaller than n (i.e., k < n <= 2k). The Merkle
 * Tree Hash of an n-element list D_n is then defined recursively as:
 *     MTH(D_n) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
 * where || is concatenation and D[k1:k2] denotes the list {d[k1], d[k1+1], ..., d[k2-1]} of
 * length (k2 - k1). (Note that the hash calculations for leaves and nodes differ. This domain
 * separation is required to give second preimage resistance.)
 * ```
 */
import { createHash } from 'node:crypto';

export const HASH_SIZE = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** RFC 9162 §2.1.1: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/** MTH of an empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

/**
 * MTH(D[n]) from all leaf hashes (for tests and full re-verification; O(n)). Written as the RFC's
 * recursion, apart from the frontier and subtree code below, so that each checks the other.
 */
export function rootFromLeaves(leafHashes: readonly Uint8Array[]): Buffer {
  for (const [i, hash] of leafHashes.entries()) checkHash(`leaf hash ${i}`, hash);
  if (leafHashes.length === 0) return EMPTY_ROOT;
  const mth = (start: number, end: number): Buffer => {
    const n = end - start;
    if (n === 1) return Buffer.from(leafHashes[start]!);
    const k = largestPowerOfTwoBelow(n);
    return nodeHash(mth(start, start + k), mth(start + k, end));
  };
  return mth(0, leafHashes.length);
}

// ── Stored perfect subtrees ────────────────────────────────────────────────────────────────────

/**
 * The tree is stored as its perfect subtrees: (level, index) is the root of the perfect subtree
 * over leaves [index·2^level, (index+1)·2^level). Level 0 is the leaf hashes.
 */
export interface PerfectSubtree {
  level: number;
  index: number;
  hash: Buffer;
}

/** Reads a stored perfect subtree hash; must exist for every completed subtree of the tree. */
export type SubtreeReader = (level: number, index: number) => Buffer;

/**
 * The right frontier ("compact range") of a tree of `size` leaves: the roots of its perfect
 * subtrees from the largest (leftmost) to the smallest, one per set bit of `size`.
 */
export type Frontier = PerfectSubtree[];

/**
 * Appends one leaf to a tree of `size` leaves with `frontier`: the new frontier and every perfect
 * subtree the append completed (the leaf itself at level 0 first, then each merge), to be
 * stored. O(log n).
 *
 * Every perfect subtree of a tree is completed by the append of its last leaf, so a store that
 * keeps what each append returns holds every subtree that {@link rangeRoot},
 * {@link inclusionProof} and {@link consistencyProof} read, the newest leaf's proof included.
 */
export function appendLeaf(
  frontier: Frontier,
  size: number,
  leaf: Buffer,
): { frontier: Frontier; completed: PerfectSubtree[] } {
  checkFrontier(frontier, size);
  if (size >= Number.MAX_SAFE_INTEGER) throw new RangeError(`a tree of ${size} leaves cannot grow`);
  checkHash('leaf', leaf);
  let node: PerfectSubtree = { level: 0, index: size, hash: leaf };
  const completed = [node];
  const next = frontier.slice();
  // Equal-sized neighbours merge, as the carries of size + 1 in binary.
  while (next.length > 0 && next[next.length - 1]!.level === node.level) {
    const left = next.pop()!;
    node = { level: node.level + 1, index: left.index / 2, hash: nodeHash(left.hash, node.hash) };
    completed.push(node);
  }
  next.push(node);
  return { frontier: next, completed };
}

/** MTH of the tree whose frontier is given (fold from the smallest subtree leftwards). */
export function rootFromFrontier(frontier: Frontier): Buffer {
  if (frontier.length === 0) return EMPTY_ROOT;
  let root = frontier[frontier.length - 1]!.hash;
  for (let i = frontier.length - 2; i >= 0; i--) root = nodeHash(frontier[i]!.hash, root);
  return root;
}

/** The frontier of a tree of `size` leaves, read from stored subtrees. */
export function frontierOf(size: number, read: SubtreeReader): Frontier {
  checkSize('size', size);
  return frontierShape(size).map(({ level, index }) => ({ level, index, hash: readSubtree(read, level, index) }));
}

/**
 * MTH(D[start:end]) from stored perfect subtrees, with O(log n) reads.
 *
 * The range must be one whose MTH the stored subtrees determine: split as §2.1.1 splits it, its
 * left part D[start:start+k] (k the largest power of two below end - start) must be a stored
 * subtree, so `start` must be a multiple of k. Every subtree root of every tree (so every
 * element of a proof, and MTH(D[0:n]) itself) is such a range; any other throws a RangeError,
 * rather than reading leaf after leaf.
 */
export function rangeRoot(start: number, end: number, read: SubtreeReader): Buffer {
  checkSize('start', start);
  checkSize('end', end);
  if (start > end) throw new RangeError(`range [${start}, ${end}) ends before it starts`);
  if (start === end) return EMPTY_ROOT;
  return subtreeRoot(start, end, read);
}

// ── Inclusion proofs ───────────────────────────────────────────────────────────────────────────

/**
 * RFC 9162 §2.1.3.1 PATH(m, D[n]): inclusion proof of leaf `index` in the tree of `size` leaves.
 *
 * ```text
 * Given an ordered list of n inputs to the tree, D_n = {d[0], d[1], ..., d[n-1]}, the Merkle
 * inclusion proof PATH(m, D_n) for the (m+1)th input d[m], 0 <= m < n, is defined as follows:
 * The proof for the single leaf in a tree with a one-element input list D_1 = {d[0]} is empty:
 *     PATH(0, {d[0]}) = {}
 * For n > 1, let k be the largest power of two smaller than n. The proof for the (m+1)th element
 * d[m] in a list of n > m elements is then defined recursively as:
 *     PATH(m, D_n) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k; and
 *     PATH(m, D_n) = PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k
 * ```
 *
 * Reads O(log n) subtrees: MTH(D[0:k]) is one perfect subtree; MTH(D[k:n]) is one too, except at
 * most once (after the first step with m < k, every list left is a perfect subtree).
 */
export function inclusionProof(index: number, size: number, read: SubtreeReader): Buffer[] {
  checkSize('index', index);
  checkSize('size', size);
  if (index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  // Walked from the root down; the RFC's ":" appends each sibling after the deeper path.
  const siblings: Buffer[] = [];
  let m = index;
  let start = 0;
  let n = size;
  while (n > 1) {
    const k = largestPowerOfTwoBelow(n);
    if (m < k) {
      siblings.push(subtreeRoot(start + k, start + n, read));
      n = k;
    } else {
      siblings.push(subtreeRoot(start, start + k, read));
      m -= k;
      start += k;
      n -= k;
    }
  }
  return siblings.reverse();
}

/**
 * RFC 9162 §2.1.3.2, verifying an inclusion proof. `leaf` is the leaf hash (RFC: "hash"). Returns
 * false for a proof that fails, a `leaf`, `root` or proof element that is not 32 bytes, and
 * `index >= size` (step 1); throws a RangeError for an index or size that is not an integer from
 * 0 to 2^53 - 1.
 *
 * ```text
 * 1. Compare leaf_index from the inclusion_proof_v2 structure against tree_size. If leaf_index
 *    is greater than or equal to tree_size, then fail the proof verification.
 * 2. Set fn to leaf_index and sn to tree_size - 1.
 * 3. Set r to hash.
 * 4. For each value p in the inclusion_path array:
 *    a. If sn is 0, then stop the iteration and fail the proof verification.
 *    b. If LSB(fn) is set, or if fn is equal to sn, then:
 *       i.  Set r to HASH(0x01 || p || r).
 *       ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either LSB(fn)
 *           is set or fn is 0.
 *       Otherwise:
 *       i.  Set r to HASH(0x01 || r || p).
 *    c. Finally, right-shift both fn and sn one time.
 * 5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and the
 *    root_hash are equal, then the log has proven the inclusion of hash. Otherwise, fail the
 *    proof verification.
 * ```
 */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  checkSize('index', index);
  checkSize('size', size);
  if (!isHash(leaf) || !isHash(root) || !proof.every(isHash)) return false;
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && Buffer.from(r).equals(root);
}

// ── Consistency proofs ─────────────────────────────────────────────────────────────────────────

/**
 * RFC 9162 §2.1.4.1 PROOF(m, D[n]): consistency proof between tree sizes `first` ≤ `second`.
 * Empty when `first` is 0 or equals `second` (the RFC defines PROOF for 0 < m < n only; an
 * empty tree is a prefix of every tree, and a tree of itself).
 *
 * ```text
 * Given an ordered list of n inputs to the tree, D_n = {d[0], d[1], ..., d[n-1]}, the Merkle
 * consistency proof PROOF(m, D_n) for a previous Merkle Tree Hash MTH(D[0:m]), 0 < m < n, is
 * defined as:
 *     PROOF(m, D_n) = SUBPROOF(m, D_n, true)
 * In SUBPROOF, the boolean value represents whether the subtree created from D[0:m] is a
 * complete subtree of the Merkle Tree created from D_n, and, consequently, whether the subtree
 * Merkle Tree Hash MTH(D[0:m]) is known. The initial call to SUBPROOF sets this to be true, and
 * SUBPROOF is then defined as follows:
 * The subproof for m = n is empty if m is the value for which PROOF was originally requested
 * (meaning that the subtree created from D[0:m] is a complete subtree of the Merkle Tree created
 * from the original D_n for which PROOF was requested, and the subtree Merkle Tree Hash
 * MTH(D[0:m]) is known):
 *     SUBPROOF(m, D_m, true) = {}
 * Otherwise, the subproof for m = n is the Merkle Tree Hash committing inputs D[0:m]:
 *     SUBPROOF(m, D_m, false) = {MTH(D_m)}
 * For m < n, let k be the largest power of two smaller than n. The subproof is then defined
 * recursively.
 * If m <= k, the right subtree entries D[k:n] only exist in the current tree. We prove that the
 * left subtree entries D[0:k] are consistent and add a commitment to D[k:n]:
 *     SUBPROOF(m, D_n, b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
 * If m > k, the left subtree entries D[0:k] are identical in both trees. We prove that the right
 * subtree entries D[k:n] are consistent and add a commitment to D[0:k]:
 *     SUBPROOF(m, D_n, b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
 * The number of nodes in the resulting proof is bounded above by ceil(log2(n)) + 1.
 * ```
 */
export function consistencyProof(first: number, second: number, read: SubtreeReader): Buffer[] {
  checkSize('first', first);
  checkSize('second', second);
  if (first > second) throw new RangeError(`tree size ${first} is larger than ${second}`);
  if (first === 0 || first === second) return [];
  // Walked from the root down; the RFC's ":" appends each commitment after the deeper subproof.
  const commitments: Buffer[] = [];
  let m = first;
  let start = 0;
  let n = second;
  let known = true;
  while (m !== n) {
    const k = largestPowerOfTwoBelow(n);
    if (m <= k) {
      commitments.push(subtreeRoot(start + k, start + n, read));
      n = k;
    } else {
      commitments.push(subtreeRoot(start, start + k, read));
      m -= k;
      start += k;
      n -= k;
      known = false;
    }
  }
  if (!known) commitments.push(subtreeRoot(start, start + n, read));
  return commitments.reverse();
}

/**
 * RFC 9162 §2.1.4.2, verifying consistency between two tree heads. The RFC's algorithm is for
 * 0 < first < second; for first = second the proof must be empty and the roots equal, and for
 * first = 0 the proof must be empty and `firstRoot` the empty tree's. Returns false for a proof
 * that fails, `first > second`, and a root or proof element that is not 32 bytes; throws a
 * RangeError for a size that is not an integer from 0 to 2^53 - 1.
 *
 * ```text
 * 1. If consistency_path is an empty array, stop and fail the proof verification.
 * 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
 * 3. Set fn to first - 1 and sn to second - 1.
 * 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
 * 5. Set both fr and sr to the first value in the consistency_path array.
 * 6. For each subsequent value c in the consistency_path array:
 *    a. If sn is 0, then stop the iteration and fail the proof verification.
 *    b. If LSB(fn) is set, or if fn is equal to sn, then:
 *       i.   Set fr to HASH(0x01 || c || fr).
 *       ii.  Set sr to HASH(0x01 || c || sr).
 *       iii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
 *            LSB(fn) is set or fn is 0.
 *       Otherwise:
 *       i.   Set sr to HASH(0x01 || sr || c).
 *    c. Finally, right-shift both fn and sn one time.
 * 7. After completing iterating through the consistency_path array as described above, verify
 *    that the fr calculated is equal to the first_hash supplied, that the sr calculated is equal
 *    to the second_hash supplied, and that sn is 0.
 * ```
 */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  checkSize('first', first);
  checkSize('second', second);
  if (!isHash(firstRoot) || !isHash(secondRoot) || !proof.every(isHash)) return false;
  if (first > second) return false;
  if (first === 0)
    return proof.length === 0 && EMPTY_ROOT.equals(firstRoot) && (second > 0 || EMPTY_ROOT.equals(secondRoot));
  if (first === second) return proof.length === 0 && Buffer.from(firstRoot).equals(secondRoot);
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : proof;
  let fn = first - 1;
  let sn = second - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return Buffer.from(fr).equals(firstRoot) && Buffer.from(sr).equals(secondRoot) && sn === 0;
}

// ── Helpers ────────────────────────────────────────────────────────────────────────────────────

/** MTH(D[start:end]) for start < end, per §2.1.1's split; see {@link rangeRoot}. */
function subtreeRoot(start: number, end: number, read: SubtreeReader): Buffer {
  const n = end - start;
  if (isPowerOfTwo(n) && start % n === 0) return readSubtree(read, log2(n), start / n);
  const k = largestPowerOfTwoBelow(n);
  if (start % k !== 0) {
    throw new RangeError(`[${start}, ${end}) is no subtree of a log: it must start at a multiple of ${k}`);
  }
  return nodeHash(readSubtree(read, log2(k), start / k), subtreeRoot(start + k, end, read));
}

function readSubtree(read: SubtreeReader, level: number, index: number): Buffer {
  const hash = read(level, index);
  if (!isHash(hash)) throw new Error(`the stored subtree (${level}, ${index}) is not a ${HASH_SIZE}-byte hash`);
  return hash;
}

/** The (level, index) of each frontier subtree of a tree of `size` leaves, largest first. */
function frontierShape(size: number): { level: number; index: number }[] {
  const shape: { level: number; index: number }[] = [];
  let start = 0;
  for (let level = 52; level >= 0; level--) {
    const width = 2 ** level;
    if (size - start >= width) {
      shape.push({ level, index: start / width });
      start += width;
    }
  }
  return shape;
}

function checkFrontier(frontier: Frontier, size: number): void {
  checkSize('size', size);
  const shape = frontierShape(size);
  const fits =
    frontier.length === shape.length &&
    frontier.every((s, i) => s.level === shape[i]!.level && s.index === shape[i]!.index && isHash(s.hash));
  if (!fits) throw new RangeError(`the frontier is not that of a tree of ${size} leaves`);
}

function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be an integer from 0 to 2^53 - 1, got ${value}`);
  }
}

function checkHash(name: string, hash: Uint8Array): void {
  if (!isHash(hash)) throw new RangeError(`${name} must be a ${HASH_SIZE}-byte hash`);
}

function isHash(hash: unknown): hash is Uint8Array {
  return hash instanceof Uint8Array && hash.length === HASH_SIZE;
}

/** For n ≥ 2: the k of §2.1.1, with k < n ≤ 2k. */
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && 2 ** log2(n) === n;
}

/** floor(log2(n)) for n ≥ 1, exact where Math.log2 rounds (2^53 - 1 would give 53). */
function log2(n: number): number {
  let level = 0;
  while (2 ** (level + 1) <= n) level++;
  return level;
}

function odd(n: number): boolean {
  return n % 2 === 1;
}

function half(n: number): number {
  return Math.floor(n / 2);
}
