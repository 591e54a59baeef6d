/**
 * The supervisor with real child processes: tiny Node scripts that say they are ready, then stay
 * up until killed, crash at once, or fail before they are ready. What it prints is read from
 * console.error (its own lines) and process.stdout (the services' lines).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type RestartPolicy, Supervisor } from '../supervisor.ts';

/**
 * argv[1]: `stay` (ready, then up until killed), `crash` (ready, then exit 3), `never` (exit 2
 * before ready), `once` (ready at its first run, which argv[2] (a file) remembers; later runs
 * exit 4 before ready).
 */
const SCRIPT = `
const [mode, file] = process.argv.slice(1);
const fs = require('node:fs');
if (mode === 'never' || (mode === 'once' && fs.existsSync(file))) process.exit(mode === 'never' ? 2 : 4);
if (mode === 'once') fs.writeFileSync(file, '');
console.log('ready pid=' + process.pid);
if (mode === 'crash') process.exit(3);
setInterval(() => {}, 60_000);
`;

const spec = (mode: string, ...args: string[]) => ({
  name: 'svc',
  command: process.execPath,
  args: ['-e', SCRIPT, mode, ...args],
  readyWhen: /^ready pid=/,
});

const policy = (p: Partial<RestartPolicy>): RestartPolicy => ({
  delayMs: 100,
  maxDelayMs: 250,
  limit: 3,
  windowMs: 60_000,
  ...p,
});

let lines: string[];
let waiters: { pattern: RegExp; resolve: (line: string) => void }[];
let dir: string;
let supervisor: Supervisor | undefined;

function record(text: string): void {
  for (const line of text.split('\n').filter(Boolean)) {
    lines.push(line);
    for (const w of waiters.filter((w) => w.pattern.test(line))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  }
}

/** The first line printed that matches, now or later. */
function line(pattern: RegExp): Promise<string> {
  const seen = lines.find((l) => pattern.test(l));
  return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ pattern, resolve }));
}

const pidOf = (readyLine: string) => Number(/pid=(\d+)/.exec(readyLine)![1]);

beforeEach(() => {
  lines = [];
  waiters = [];
  dir = mkdtempSync(join(tmpdir(), 'packtrust-supervisor-'));
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => record(args.join(' ')));
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => record(args.join(' ')));
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    record(String(chunk));
    return true;
  });
});

afterEach(async () => {
  await supervisor?.stop(2000);
  supervisor = undefined;
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('Supervisor', () => {
  it('restarts a service killed after it was ready, says so loudly, and waits for its ready line', async () => {
    const failures: string[] = [];
    supervisor = new Supervisor(policy({}), (m) => failures.push(m));
    await supervisor.start(spec('stay'), 0);
    const first = pidOf(await line(/^\[svc\] ready pid=/));
    process.kill(first, 'SIGKILL');
    expect(await line(/CRASHED/)).toMatch(
      /^\[stack\] svc CRASHED \(signal SIGKILL\) after \d+\.\d s; restart 1 in 0\.1 s \(3 crashes within 60 s stop the stack\)$/,
    );
    expect(await line(/is back/)).toMatch(/^\[stack\] svc is back: restart 1 ready in \d+\.\d s$/);
    const second = pidOf(lines.filter((l) => /^\[svc\] ready pid=/.test(l))[1]!);
    expect(second).not.toBe(first);
    expect(failures).toEqual([]);

    await supervisor.stop(5000);
    expect(await line(/svc stopped/)).toMatch(/^\[stack\] svc stopped \(SIGTERM, \d+\.\d s\)$/);
    expect(() => process.kill(second, 0)).toThrow();
  });

  it('backs off exponentially up to the longest delay, and reports a service that keeps crashing', async () => {
    let failure: (message: string) => void = () => undefined;
    const failed = new Promise<string>((resolve) => {
      failure = resolve;
    });
    supervisor = new Supervisor(policy({ limit: 4 }), failure);
    await supervisor.start(spec('crash'), 0);
    expect(await failed).toMatch(
      /^svc crashed \(exit code 3\) after \d+\.\d s: 4 crashes within 60 s, it keeps crashing$/,
    );
    expect(lines.filter((l) => l.includes('CRASHED')).map((l) => /restart \d in [\d.]+ s/.exec(l)![0])).toEqual([
      'restart 1 in 0.1 s',
      'restart 2 in 0.2 s',
      'restart 3 in 0.25 s',
    ]);
    expect(lines.filter((l) => /^\[svc\] ready/.test(l))).toHaveLength(4);
  });

  it('counts a restart that exits before it is ready as a crash', async () => {
    let failure: (message: string) => void = () => undefined;
    const failed = new Promise<string>((resolve) => {
      failure = resolve;
    });
    supervisor = new Supervisor(policy({ limit: 3 }), failure);
    await supervisor.start(spec('once', join(dir, 'started')), 0);
    process.kill(pidOf(await line(/^\[svc\] ready pid=/)), 'SIGKILL');
    expect(await failed).toMatch(
      /^svc crashed \(exit code 4\) after \d+\.\d s: 3 crashes within 60 s, it keeps crashing$/,
    );
    expect(lines.filter((l) => l.includes('CRASHED'))).toEqual([
      expect.stringMatching(/^\[stack\] svc CRASHED \(signal SIGKILL\) after \d+\.\d s; restart 1 in 0\.1 s/),
      expect.stringMatching(/^\[stack\] svc CRASHED \(exit code 4\) after \d+\.\d s; restart 2 in 0\.2 s/),
    ]);
    expect(lines.some((l) => l.includes('is back'))).toBe(false);
  });

  it('fails the start of a service that exits before it was ever ready, and restarts nothing', async () => {
    const failures: string[] = [];
    supervisor = new Supervisor(policy({}), (m) => failures.push(m));
    await expect(supervisor.start(spec('never'), 0)).rejects.toThrow('svc exited (exit code 2) before it was ready');
    expect(lines.filter((l) => l.startsWith('[stack]'))).toEqual([]);
    expect(failures).toEqual([]);
  });

  it('stops the stack at the first crash when the limit is 1', async () => {
    let failure: (message: string) => void = () => undefined;
    const failed = new Promise<string>((resolve) => {
      failure = resolve;
    });
    supervisor = new Supervisor(policy({ limit: 1 }), failure);
    await supervisor.start(spec('stay'), 0);
    process.kill(pidOf(await line(/^\[svc\] ready pid=/)), 'SIGKILL');
    expect(await failed).toMatch(/^svc crashed \(signal SIGKILL\) after \d+\.\d s$/);
    expect(lines.some((l) => l.includes('CRASHED'))).toBe(false);
  });
});
