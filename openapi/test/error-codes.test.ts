import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Every problem code a service can send over HTTP is listed in its contract: codes are part of
 * the API (common/src/errors.ts). A service's codes are read from its source, the whole folder,
 * wherever its catalogue puts them: the codes it declares (`defineError('CODE', …)`, or a
 * `new PacktrustError('CODE', …)` written inline), and the shared codes of common/src/errors.ts
 * that its code, or the common modules it imports, refer to.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const SERVICES = [
  { service: 'ca', folder: 'ca/src', contract: 'openapi/ca.yaml' },
  { service: 'gateway', folder: 'gateway/src', contract: 'openapi/hub.yaml' },
  { service: 'verifier', folder: 'verifier/src', contract: 'openapi/verifier.yaml' },
];

const STARTUP = 'raised while a configuration is loaded, before anything listens';

/**
 * Codes declared in a service's folder that never reach an HTTP client, and why: its CLI's, or
 * raised before the service listens. The CLIs' codes are documented in docs/onboarding.md.
 */
const NOT_OVER_HTTP: Record<string, Record<string, string>> = {
  ca: {
    CONFIG_INVALID: STARTUP,
    CA_ALREADY_INITIALISED: '`packtrust-ca init` only',
    CA_PASSPHRASE_INVALID: 'reading and using the key passphrase: the CLI, and the service before it listens',
    CA_CERTIFICATE_INVALID: 'opening a damaged CA (a CA certificate without a key identifier), before it listens',
  },
  gateway: {
    CONFIG_INVALID: STARTUP,
    HUB_PREFIX_INVALID: '`packtrust-gateway prefix` only: the registry has no HTTP API',
    HUB_PREFIX_OVERLAP: '`packtrust-gateway prefix` only: the registry has no HTTP API',
    HUB_PREFIX_UNKNOWN: '`packtrust-gateway prefix` only: the registry has no HTTP API',
    HUB_PREFIX_IN_USE: '`packtrust-gateway prefix` only: the registry has no HTTP API',
    HUB_EVIDENCE_UNKNOWN: '`packtrust-gateway evidence export` only',
    OAUTH_CLIENT_INVALID: '`packtrust-gateway client add` only: clients are registered by onboarding staff',
  },
  verifier: {
    CONFIG_INVALID: STARTUP,
  },
};

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

function sourcesUnder(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(folder, f));
}

const IMPORT = /^(?:import|export)\s[^;]*?from\s+'([^']+)';/gm;

/** The service's files and every module of common/src they import, directly or not. */
function closure(folder: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const [, spec] of read(file).matchAll(IMPORT)) {
      if (!spec!.startsWith('.')) continue;
      const target = relative(ROOT, resolve(ROOT, dirname(file), spec!));
      if (target.startsWith('common/src/') || target.startsWith(`${folder}/`)) visit(target);
    }
  };
  for (const file of sourcesUnder(folder)) visit(file);
  return [...seen];
}

const DECLARED = /(?:defineError|new PacktrustError)\(\s*'([A-Z][A-Z0-9_]*)'/g;
const SHARED_DECLARATION = /^(?:export )?const (\w+) = defineError\(\s*'([A-Z][A-Z0-9_]*)'[\s\S]*?\);/gm;

/** The shared errors (common/src/errors.ts): class name → code. */
const shared = new Map(
  [...read('common/src/errors.ts').matchAll(SHARED_DECLARATION)].map(([, name, code]) => [name!, code!]),
);

/** Every code the service's source can raise (its HTTP answers, its CLI's and its start-up's). */
function codesOf(folder: string): Set<string> {
  const codes = new Set<string>();
  for (const file of closure(folder)) {
    let text = read(file).replaceAll(IMPORT, '');
    if (file === 'common/src/errors.ts') text = text.replaceAll(SHARED_DECLARATION, '');
    else for (const [, code] of text.matchAll(DECLARED)) codes.add(code!);
    for (const [name, code] of shared) if (new RegExp(`\\b${name}\\b`).test(text)) codes.add(code);
  }
  return codes;
}

describe.each(SERVICES)('the problem codes of $service', ({ service, folder, contract }) => {
  const codes = codesOf(folder);
  const exempt = NOT_OVER_HTTP[service] ?? {};
  const text = read(contract);

  it('are found in its source', () => {
    expect(codes.size).toBeGreaterThan(5);
    expect(codes).toContain('INTERNAL');
    expect(codes).toContain('BAD_REQUEST');
  });

  it(`each appear in ${contract}`, () => {
    const missing = [...codes].filter((code) => !(code in exempt) && !text.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });

  it('are each sent over HTTP, or exempt with a reason for a code it declares', () => {
    expect(Object.keys(exempt).filter((code) => !codes.has(code))).toEqual([]);
  });
});
