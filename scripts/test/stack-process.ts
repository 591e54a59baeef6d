/** The stack as a child process, the way a user runs it: `npm start` (scripts/start.ts). */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TokenClient } from '../../clients/token-client.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TSX = join(ROOT, 'node_modules/.bin/tsx');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** PACKTRUST_* settings for a stack of its own: a data directory and free ports. */
export async function stackEnv(dataDir: string): Promise<Record<string, string>> {
  return {
    PACKTRUST_DATA_DIR: dataDir,
    PACKTRUST_CA_PUBLIC_PORT: String(await freePort()),
    PACKTRUST_CA_ADMIN_PORT: String(await freePort()),
    PACKTRUST_GATEWAY_PORT: String(await freePort()),
    // Three nodes listen from here on; a random high range keeps clear of other tests.
    PACKTRUST_VERIFIER_BASE_PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
  };
}

export interface StackProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the stack prints that it is running; rejects if it exits first. */
  ready: Promise<void>;
  /**
   * The first whole line of output, after its first `from` characters, that matches `pattern`:
   * at once if printed already, else as soon as it is; rejects if the stack exits first.
   */
  line(pattern: RegExp, from?: number): Promise<string>;
}

export function startStack(env: NodeJS.ProcessEnv): StackProcess {
  // Node with tsx's loader, as `npm start` runs but without the tsx command's wrapper process:
  // it gives a child 30 ms to take a signal before killing it (exit 130), which a busy machine misses.
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/start.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...env, PACKTRUST_CA_PASSPHRASE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const line = (pattern: RegExp, from = 0) =>
    new Promise<string>((resolve, reject) => {
      const find = () => {
        // Whole lines only: a chunk may end in the middle of one.
        const found = output
          .slice(from, output.lastIndexOf('\n'))
          .split('\n')
          .find((l) => pattern.test(l));
        if (found === undefined) return false;
        child.stdout!.off('data', find);
        child.stderr!.off('data', find);
        child.off('exit', exited);
        resolve(found);
        return true;
      };
      const exited = (code: number | null) => {
        if (!find()) reject(new Error(`stack exited with ${code} before printing ${pattern}:\n${output}`));
      };
      if (find()) return;
      child.stdout!.on('data', find);
      child.stderr!.on('data', find);
      child.on('exit', exited);
    });
  const ready = line(/packtrust is running/).then(() => undefined);
  return { child, output: () => output, ready, line };
}

/**
 * A token of a new pharmacy client of `market` at the stack `env` describes: registered with
 * `packtrust-gateway client add` on the hub store (as onboarding staff do), and asked of the hub's
 * OAuth provider.
 */
export async function pharmacyToken(env: Record<string, string>, market: string): Promise<string> {
  const dataDir = env.PACKTRUST_DATA_DIR!;
  const location = `${market}-APO-${Math.random().toString(36).slice(2, 8).toUpperCase()}`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'gateway/src/cli.ts'),
      '--data-dir',
      join(dataDir, 'gateway'),
      'client',
      'add',
      ...['--market', market, '--role', 'pharmacy', '--location', location, '--org', `${location}-ORG`, '--secret'],
    ],
    { cwd: ROOT },
  );
  const { clientId, clientSecret } = JSON.parse(stdout) as { clientId: string; clientSecret: string };
  const tokens = new TokenClient({
    issuer: `https://127.0.0.1:${env.PACKTRUST_GATEWAY_PORT}/oauth`,
    clientId,
    clientSecret,
    ca: readFileSync(join(dataDir, 'ca', 'chain.pem'), 'utf8'),
  });
  try {
    return (await tokens.token()).accessToken;
  } finally {
    await tokens.close();
  }
}

/** Ctrl-C, and the exit code. */
export function stopStack(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.kill('SIGINT');
  });
}
