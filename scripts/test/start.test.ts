import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stackEnv, startStack, stopStack } from './stack-process.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'packtrust-start-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('npm start', () => {
  it('bootstraps the PKI on first start, serves, stops cleanly on Ctrl-C, and reuses the PKI next time', async () => {
    const env = await stackEnv(dataDir);
    const first = startStack(env);
    await first.ready;
    expect(first.output()).toContain('created the PKI');
    expect(first.output()).toMatch(/\[ca\] .*CA listening/);
    expect(first.output()).toContain('issued the gateway certificate');
    expect(first.output()).toMatch(/\[gateway\] .*gateway listening/);
    expect(first.output()).toMatch(/\[de-2\] .*verifier listening/);
    expect(first.output()).toMatch(/\[fr-1\] .*verifier listening/);
    const health = await fetch(`http://127.0.0.1:${env.PACKTRUST_CA_PUBLIC_PORT}/health`);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    expect(await stopStack(first.child)).toBe(0);

    const second = startStack(env);
    await second.ready;
    expect(second.output()).not.toContain('created the PKI');
    expect(await stopStack(second.child)).toBe(0);
  }, 60_000);

  it('refuses a bad configuration with every problem listed', async () => {
    const bad = startStack({
      PACKTRUST_DATA_DIR: dataDir,
      PACKTRUST_CA_PUBLIC_PORT: 'eighty',
      PACKTRUST_CA_ADMIN_PORT: '99999',
    });
    await expect(bad.ready).rejects.toThrow(/caPublicPort[\s\S]*caAdminPort/);
  });
});
