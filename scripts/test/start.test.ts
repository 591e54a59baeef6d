import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'packtrust-start-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function startStack(env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; ready: Promise<void> } {
  const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'scripts/start.ts')], {
    env: { ...process.env, ...env, PACKTRUST_CA_PASSPHRASE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('packtrust is running')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`stack exited with ${code}:\n${output}`)));
  });
  return { child, output: () => output, ready };
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.kill('SIGINT');
  });
}

describe('npm start', () => {
  it('bootstraps the PKI on first start, serves, stops cleanly on Ctrl-C, and reuses the PKI next time', async () => {
    const env = {
      PACKTRUST_DATA_DIR: dataDir,
      PACKTRUST_CA_PUBLIC_PORT: String(await freePort()),
      PACKTRUST_CA_ADMIN_PORT: String(await freePort()),
      PACKTRUST_GATEWAY_PORT: String(await freePort()),
      // Three nodes listen from here on; a random high range keeps clear of other tests.
      PACKTRUST_VERIFIER_BASE_PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
    };
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
    expect(await stop(first.child)).toBe(0);

    const second = startStack(env);
    await second.ready;
    expect(second.output()).not.toContain('created the PKI');
    expect(await stop(second.child)).toBe(0);
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
