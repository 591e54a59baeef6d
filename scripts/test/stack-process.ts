/** The stack as a child process, the way a user runs it: `npm start` (scripts/start.ts). */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Ctrl-C, and the exit code. */
export function stopStack(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.kill('SIGINT');
  });
}
