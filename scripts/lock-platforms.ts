/**
 * `npm run lock:platforms`: after `npm install`, re-records in package-lock.json the optional
 * platform builds that this machine's npm registry does not serve (it answers 404 for, e.g.,
 * Biome's and msgpackr-extract's macOS, Windows, Android and musl builds). npm install leaves them
 * out of the lock, and npm ci then refuses the lock; recorded as optional entries for their
 * os/cpu, nested under their parent (where npm ci's ideal tree places them), they validate and are
 * skipped on other platforms.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Entry = { version?: string; optionalDependencies?: Record<string, string>; dev?: boolean; [k: string]: unknown };

const LOCK = fileURLToPath(new URL('../package-lock.json', import.meta.url));
const lock = JSON.parse(readFileSync(LOCK, 'utf8')) as { packages: Record<string, Entry> };
const packages = lock.packages;
const present = new Set(
  Object.keys(packages).map((k) => k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length)),
);
let added = 0;
for (const [location, entry] of Object.entries(packages)) {
  for (const name of Object.keys(entry.optionalDependencies ?? {})) {
    if (present.has(name)) continue;
    const platform =
      /(android|darwin|freebsd|linux|openbsd|sunos|win32)-(arm64|arm|x64|ia32|ppc64|s390x|riscv64)(-(musl|gnu|msvc))?$/.exec(
        name,
      );
    if (!platform) continue;
    packages[`${location}/node_modules/${name}`] = {
      cpu: [platform[2]],
      ...(entry.dev ? { dev: true } : {}),
      ...(platform[4] === 'musl' ? { libc: ['musl'] } : {}),
      optional: true,
      os: [platform[1]],
    };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`recorded ${added} platform build(s) the registry does not serve`);
