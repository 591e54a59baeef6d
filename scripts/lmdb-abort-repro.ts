/**
 * `npx tsx scripts/lmdb-abort-repro.ts [flags]`: a standalone reproduction of lmdb-js aborting in
 * `mdb_freelist_save()` (docs/lmdb-abort.md). Each run fills an environment with random keys in
 * large write transactions (a replica's bootstrap or catch-up), then makes many small commits that
 * update random keys (supplies applied from the feed). Each run is a child process, so an abort of
 * LMDB ends that run, not this script, which prints what each run did and how it ended.
 *
 * Only lmdb-js is used (no project code), so the script can go to an upstream report as it is.
 *
 * Flags (defaults in brackets):
 *   --keys N             keys filled [2000000]
 *   --txn-size N         keys per fill transaction [100000]
 *   --child on|off       each transaction's writes in a child transaction, as
 *                        `transaction(() => childTransaction(work))` [on]
 *   --overlapping-sync on|off   lmdb-js's overlappingSync [on, lmdb-js's default on Linux]
 *   --sync-txn on|off    transactionSync instead of the asynchronous transaction [off]
 *   --reopen on|off      close the environment after the fill and open it again [off]
 *   --retain N           lmdb-js's maxFreeSpaceToRetain: free-page list entries kept in memory
 *                        from one write transaction to the next [75000, lmdb-js's default]
 *   --load N             lmdb-js's maxFreeSpaceToLoad [50000, lmdb-js's default]
 *   --commits N          small commits after the fill [20000]
 *   --commit-size N      keys updated per small commit [1]
 *   --concurrency N      small transactions queued at once (lmdb-js batches them into one) [1]
 *   --hold-read none|fill|commits|both  a read transaction kept open during the fill, the small
 *                        commits or both, renewed every --hold-every write transactions [none]
 *   --hold-every N       [50]
 *   --base DIR           fill once into DIR (kept, reused when present: filling 10M keys takes
 *                        minutes); each run then starts from a copy of it in a fresh process, as a
 *                        node restarted after its bootstrap does [none: each run fills its own]
 *   --runs N             runs of this variant, one child process each [1]
 *   --dir DIR            where the runs' environments go [a temporary directory, removed after]
 *   --json               one JSON line per run and a summary line, instead of text
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface Variant {
  keys: number;
  txnSize: number;
  child: boolean;
  overlappingSync: boolean;
  syncTxn: boolean;
  reopen: boolean;
  retain: number;
  load: number;
  commits: number;
  commitSize: number;
  concurrency: number;
  holdRead: 'none' | 'fill' | 'commits' | 'both';
  holdEvery: number;
}

interface RunResult {
  run: number;
  outcome: 'survived' | 'aborted' | 'failed';
  /** Where the run was when it ended: `fill N`, `filled`, `commits N` or `done`. */
  phase: string;
  exit: number | null;
  signal: string | null;
  /** The assertion or error LMDB printed, if any. */
  message?: string;
  seconds: number;
}

const onOff = (v: string, name: string): boolean => {
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new Error(`--${name} takes on or off, not ${v}`);
};

function parseFlags(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      keys: { type: 'string', default: '2000000' },
      'txn-size': { type: 'string', default: '100000' },
      child: { type: 'string', default: 'on' },
      'overlapping-sync': { type: 'string', default: 'on' },
      'sync-txn': { type: 'string', default: 'off' },
      reopen: { type: 'string', default: 'off' },
      retain: { type: 'string', default: '75000' },
      load: { type: 'string', default: '50000' },
      commits: { type: 'string', default: '20000' },
      'commit-size': { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '1' },
      'hold-read': { type: 'string', default: 'none' },
      'hold-every': { type: 'string', default: '50' },
      base: { type: 'string' },
      runs: { type: 'string', default: '1' },
      dir: { type: 'string' },
      json: { type: 'boolean', default: false },
      // Internal: the child process's environment and what it does there.
      'run-in': { type: 'string' },
      only: { type: 'string', default: 'all' },
    },
  });
  const holdRead = values['hold-read'];
  if (!['none', 'fill', 'commits', 'both'].includes(holdRead))
    throw new Error(`--hold-read takes none, fill, commits or both, not ${holdRead}`);
  const variant: Variant = {
    keys: Number(values.keys),
    txnSize: Number(values['txn-size']),
    child: onOff(values.child, 'child'),
    overlappingSync: onOff(values['overlapping-sync'], 'overlapping-sync'),
    syncTxn: onOff(values['sync-txn'], 'sync-txn'),
    reopen: onOff(values.reopen, 'reopen'),
    retain: Number(values.retain),
    load: Number(values.load),
    commits: Number(values.commits),
    commitSize: Number(values['commit-size']),
    concurrency: Number(values.concurrency),
    holdRead: holdRead as Variant['holdRead'],
    holdEvery: Number(values['hold-every']),
  };
  for (const [k, v] of Object.entries(variant))
    if (typeof v === 'number' && !(Number.isInteger(v) && v >= (k === 'retain' ? 0 : 1)))
      throw new Error(`${k} must be a positive integer`);
  return { variant, values, runs: Number(values.runs) };
}

/** A pack key as the replica keys them: a GTIN-14 and a random 12-character serial. */
const keyOf = (i: number) => `09506000134352${createHash('sha1').update(String(i)).digest('base64url').slice(0, 12)}`;

interface Pack {
  b: string;
  s: string;
  by?: string;
  at?: string;
}

/**
 * The workload, in the child process. `only`: `fill` (into a base kept for later runs),
 * `commits` (on a copy of a filled base) or `all`. Prints `phase …` lines, so that the parent
 * knows where an abort hit.
 */
async function workload(path: string, v: Variant, only: string): Promise<void> {
  const { open } = await import('lmdb');
  const phase = (s: string) => process.stdout.write(`phase ${s}\n`);
  const openEnv = () => {
    const root = open({
      path,
      maxDbs: 4,
      mapSize: 64 * 1024 ** 3,
      compression: false,
      overlappingSync: v.overlappingSync,
      maxFreeSpaceToRetain: v.retain,
      maxFreeSpaceToLoad: v.load,
    } as Parameters<typeof open>[0]);
    return { root, db: root.openDB<Pack, string>({ name: 'packs' }) };
  };
  let { root, db } = openEnv();

  // One write transaction: `work` in a child transaction (or not), asynchronous (or not).
  const transact = (work: () => void): Promise<unknown> => {
    if (v.syncTxn) {
      root.transactionSync(() => (v.child ? root.childTransaction(work) : work()));
      return Promise.resolve();
    }
    return v.child ? root.transaction(() => root.childTransaction(work)) : root.transaction(work);
  };
  // A read transaction held open (a snapshot being streamed, a long bulk read).
  let held: { done(): void } | undefined;
  const hold = (on: boolean) => {
    held?.done();
    held = undefined;
    if (on) {
      held = root.useReadTransaction();
      db.get(keyOf(0), { transaction: held as never });
    }
  };

  if (only !== 'commits') {
    const active: Pack = { b: 'B1', s: 'ACTIVE' };
    const holdFill = v.holdRead === 'fill' || v.holdRead === 'both';
    for (let start = 0, n = 0; start < v.keys; start += v.txnSize, n++) {
      const end = Math.min(v.keys, start + v.txnSize);
      if (holdFill && n % v.holdEvery === 0) hold(true);
      await transact(() => {
        for (let i = start; i < end; i++) db.putSync(keyOf(i), active);
      });
      phase(`fill ${end}`);
    }
    hold(false);
    phase('filled');
    if (only === 'fill') {
      await root.close();
      return;
    }
    if (v.reopen) {
      await root.close();
      ({ root, db } = openEnv());
    }
  }

  const holdCommits = v.holdRead === 'commits' || v.holdRead === 'both';
  let seed = 1;
  // xorshift: the same keys in every run of a variant.
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  let transactions = 0;
  for (let c = 0; c < v.commits; c += v.concurrency) {
    if (holdCommits && transactions++ % v.holdEvery === 0) hold(true);
    const batch: Promise<unknown>[] = [];
    for (let k = 0; k < v.concurrency && c + k < v.commits; k++) {
      const keys = Array.from({ length: v.commitSize }, () => keyOf(Math.floor(random() * v.keys)));
      batch.push(
        transact(() => {
          for (const key of keys) {
            const current = db.get(key);
            if (current) db.putSync(key, { b: current.b, s: 'SUPPLIED', by: 'APO-1', at: '2026-11-22T10:00:00Z' });
          }
        }),
      );
    }
    await Promise.all(batch);
    if ((c + v.concurrency) % 5000 < v.concurrency) phase(`commits ${c + v.concurrency}`);
  }
  hold(false);
  await root.close();
  phase('done');
}

function describe(v: Variant, base?: string): string {
  return [
    `keys ${v.keys}`,
    `txn-size ${v.txnSize}`,
    `child ${v.child ? 'on' : 'off'}`,
    `overlapping-sync ${v.overlappingSync ? 'on' : 'off'}`,
    `sync-txn ${v.syncTxn ? 'on' : 'off'}`,
    base ? `base ${base}` : `reopen ${v.reopen ? 'on' : 'off'}`,
    `retain ${v.retain}`,
    `load ${v.load}`,
    `commits ${v.commits}×${v.commitSize}`,
    `concurrency ${v.concurrency}`,
    `hold-read ${v.holdRead}${v.holdRead === 'none' ? '' : ` every ${v.holdEvery}`}`,
  ].join(', ');
}

/** lmdb-js's package.json (its `exports` do not list it): the version under test. */
function lmdbVersion(): string {
  let dir = dirname(createRequire(import.meta.url).resolve('lmdb'));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** One child process on the environment at `path`; how it ended. */
function runChild(run: number, path: string, argv: string[], only: string): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const script = fileURLToPath(import.meta.url);
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...argv, '--run-in', path, '--only', only], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let phase = 'starting';
    let stderr = '';
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (line.startsWith('phase ')) phase = line.slice(6);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.length > 100_000) stderr = stderr.slice(-100_000);
    });
    child.on('close', (exit, signal) => {
      const assertion = /Assertion '[^']*' failed in \w+\(\)/.exec(stderr)?.[0];
      const error = /^(?:Error|\w+Error)\b[^\n]*/m.exec(stderr)?.[0];
      const finished = only === 'fill' ? 'filled' : 'done';
      const outcome =
        exit === 0 && phase === finished ? 'survived' : signal === 'SIGABRT' || assertion ? 'aborted' : 'failed';
      const message = assertion ?? error ?? (stderr.trim().split('\n').at(-1) || undefined);
      resolve({
        run,
        outcome,
        phase,
        exit,
        signal,
        ...(message && outcome !== 'survived' ? { message } : {}),
        seconds: Math.round((performance.now() - started) / 100) / 10,
      });
    });
  });
}

const line = (r: RunResult) =>
  `run ${r.run}: ${r.outcome} at ${r.phase} after ${r.seconds} s${r.signal ? ` (${r.signal})` : r.exit ? ` (exit ${r.exit})` : ''}${r.message ? `: ${r.message}` : ''}`;

const argv = process.argv.slice(2);
const { variant, values, runs } = parseFlags(argv);
if (values['run-in']) {
  await workload(values['run-in'], variant, values.only);
} else {
  // The flags the children get: the variant's own, not where the runs go.
  const childArgv = argv.filter(
    (a, i) => !['--runs', '--dir', '--json'].includes(a) && !['--runs', '--dir'].includes(argv[i - 1]!),
  );
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'lmdb-abort-repro-'));
  const version = lmdbVersion();
  const say = (s: string) => {
    if (!values.json) console.log(s);
  };
  say(
    `lmdb-js ${version}, Node ${process.version}, ${process.platform} ${process.arch}\n${describe(variant, values.base)}`,
  );
  const results: RunResult[] = [];
  try {
    const base = values.base;
    if (base && !existsSync(join(base, 'filled'))) {
      rmSync(base, { recursive: true, force: true });
      const fill = await runChild(0, base, childArgv, 'fill');
      say(`base: ${line(fill).slice('run 0: '.length)}`);
      if (fill.outcome !== 'survived') {
        results.push(fill);
        throw new Error('the base could not be filled');
      }
      writeFileSync(join(base, 'filled'), `${describe(variant)}\n`);
    }
    for (let run = 1; run <= runs; run++) {
      const path = join(dir, `run-${run}`);
      if (base) cpSync(base, path, { recursive: true });
      const r = await runChild(run, path, childArgv, base ? 'commits' : 'all');
      rmSync(path, { recursive: true, force: true });
      results.push(r);
      if (values.json) console.log(JSON.stringify({ variant, ...r }));
      else say(line(r));
    }
  } finally {
    if (!values.dir) rmSync(dir, { recursive: true, force: true });
  }
  const aborted = results.filter((r) => r.outcome === 'aborted').length;
  const failed = results.filter((r) => r.outcome === 'failed').length;
  const summary = {
    variant,
    lmdb: version,
    node: process.version,
    runs,
    aborted,
    failed,
    survived: runs - aborted - failed,
  };
  if (values.json) console.log(JSON.stringify({ summary }));
  else say(`${aborted} of ${runs} aborted, ${failed} failed otherwise`);
  process.exitCode = aborted + failed > 0 ? 1 : 0;
}
