/**
 * `npm run backup -- [--data-dir ./data] --out DIR`: a consistent hot copy of every LMDB environment
 * under the data directory (LMDB's own copy, from a read transaction, so services may keep running),
 * plus the encrypted key files. The passphrases are not copied.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { open } from 'lmdb';

function* lmdbEnvironments(dir: string): Generator<string> {
  if (existsSync(join(dir, 'data.mdb'))) {
    yield dir;
    return;
  }
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory() && entry !== 'secrets') yield* lmdbEnvironments(path);
  }
}

const { values } = parseArgs({
  options: { 'data-dir': { type: 'string', default: './data' }, out: { type: 'string' } },
});
if (!values.out) {
  console.error('usage: npm run backup -- [--data-dir ./data] --out DIR');
  process.exit(1);
}
const dataDir = resolve(values['data-dir']!);
const out = resolve(values.out);
if (existsSync(out)) {
  console.error(`${out} exists; choose a new directory for each backup`);
  process.exit(1);
}
// The copy holds what the data directory holds: it is its owner's alone (0700, files 0600).
mkdirSync(out, { recursive: true, mode: 0o700 });
for (const env of lmdbEnvironments(dataDir)) {
  const target = join(out, relative(dataDir, env));
  mkdirSync(target, { recursive: true, mode: 0o700 });
  const db = open({ path: env, readOnly: true });
  await db.backup(target, false);
  await db.close();
  chmodSync(join(target, 'data.mdb'), 0o600);
  console.log(`copied ${env}`);
}
for (const keys of ['ca/keys']) {
  if (existsSync(join(dataDir, keys))) cpSync(join(dataDir, keys), join(out, keys), { recursive: true });
}
console.log(`backup written to ${out} (passphrases are not included)`);
