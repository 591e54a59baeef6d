import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FMD_MARKETS } from '../../common/src/markets.ts';
import { HubStore } from '../../gateway/src/hub-store.ts';
import { ROOT, type StackProcess, stackEnv, startStack, stopStack, TSX } from './stack-process.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'packtrust-demo-'));
let env: Record<string, string>;
let stack: StackProcess;

function demo(extraEnv: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      [join(ROOT, 'scripts/demo.ts')],
      { env: { ...process.env, ...extraEnv }, timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err.code as number | undefined) ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  env = await stackEnv(dataDir);
  stack = startStack(env);
  await stack.ready;
}, 90_000);

afterAll(async () => {
  if (stack) expect(await stopStack(stack.child)).toBe(0);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm run demo against npm start', () => {
  it('tells the whole story and every step behaves as described', async () => {
    const run = await demo(env);
    expect(run.stderr).not.toContain('DEMO FAILED');
    expect(run.code, `${run.stdout}\n${run.stderr}\n--- stack ---\n${stack.output()}`).toBe(0);
    const out = run.stdout;
    expect(out).toMatch(/Onboarding staff issue a manufacturer certificate/);
    expect(out).toMatch(/Onboarding staff register the GS1 company prefix 950\d{7} for DEMO-PHARMA-/);
    expect(out).toMatch(/\(not under 950\d{7}\) -> 403 HUB_PREFIX_NOT_OWNED/);
    expect(out).toMatch(/DE: client .* got a token for urn:packtrust:verifier:DE/);
    expect(out).toMatch(/FR: client .* got a token for urn:packtrust:verifier:FR/);
    expect(out).toMatch(/batch DEMO-B1: 10000 packs accepted .* randomisation pass/);
    expect(out).toMatch(/-> ACTIVE, state ACTIVE/);
    expect(out).toMatch(/accepted: CHANGED, state SUPPLIED/);
    expect(out).toMatch(/fr-1 -> DECOMMISSIONED, state SUPPLIED/);
    expect(out).toMatch(/accepted: state ACTIVE/);
    // An insider: fr-1's own certificate tries to act beyond its rights; each attempt is refused,
    // nothing changes at any node, and every refusal is in the hub's evidence log.
    expect(out).toMatch(/supply in the DE pharmacy's name, with its captured token -> 403 HUB_WRONG_MARKET/);
    expect(out).toMatch(/supply a pack of \d{14}, sold only in DE -> 403 HUB_WRONG_MARKET/);
    expect(out).toMatch(/supply back-dated by 11 days -> 403 HUB_EVENT_TIME_INVALID/);
    expect(out).toMatch(/raise an alert on \d{14} -> 403 HUB_WRONG_MARKET/);
    expect(out).toMatch(/the pack is still ACTIVE at de-1, de-2, fr-1/);
    const seqs = /refusals kept as evidence: records ([\d, ]+)/.exec(out)![1]!.split(', ').map(Number);
    const store = new HubStore(join(dataDir, 'gateway', 'hub'), FMD_MARKETS);
    try {
      for (const seq of seqs) {
        expect(store.evidence.record(seq)!.body).toMatchObject({ org: 'packtrust-fr', response: { status: 403 } });
      }
    } finally {
      await store.close();
    }
    expect(out).toMatch(/SERIAL_UNKNOWN, alert A3/);
    expect(out).toMatch(/the manufacturer reads it at the hub: A3 in DE/);
    expect(out).toMatch(/INACTIVE \(RECALLED\): the batch is recalled: demo: out-of-specification assay/);
    expect(out).toMatch(/next upload -> 401 /);
    expect(out).toContain('The story ran end to end');
    // The receipts of the three accepted writes are kept for the manufacturer.
    const [org] = readdirSync(join(dataDir, 'demo'));
    expect(readdirSync(join(dataDir, 'demo', org!, 'receipts')).sort()).toEqual([
      'batch.json',
      'product.json',
      'recall.json',
    ]);
  }, 120_000);

  it('says to start the stack first, and fails, when nothing runs', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'packtrust-demo-empty-'));
    try {
      const run = await demo({ ...(await stackEnv(empty)) });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/DEMO FAILED: cannot read the CA chain .*start the stack first with `npm start`/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  }, 30_000);
});
