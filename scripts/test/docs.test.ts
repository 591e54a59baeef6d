/**
 * The guides run as written. Every shell block (```sh, ```bash) of the user guides runs, guide
 * after guide and in the order it stands, with bash, in a folder laid out as the packtrust
 * checkout (its files linked) whose `./data` is a stack this test starts with `npm start`'s
 * script, on ports of its own; the guides' `npm install --global .` goes to a prefix of its own. A block is left out only when the line before its fence says
 * why: `<!-- not run: reason -->` (production hosts and paths, a step that would end the story).
 * A guide that drifts from the code, or a command that fails as a new user types it, fails here.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, type StackProcess, stackEnv, startStack, stopStack } from './stack-process.ts';

/** In the order a new installation meets them: each uses what the ones before made. */
const GUIDES = ['onboarding', 'manufacturer', 'pharmacy', 'operations'];

interface Block {
  /** Line of the opening fence, from 1. */
  line: number;
  code: string;
}

const FENCE = /^\s*(`{3,})\s*(\S*)/;
const NOT_RUN = /^<!--\s*not run:\s*(.*?)\s*-->$/;

/** The blocks of a Markdown guide that are meant to run. */
function runnableBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, ticks, info] = open as unknown as [string, string, string];
    let end = i + 1;
    while (end < lines.length && lines[end]!.trim() !== ticks) end++;
    const before =
      lines
        .slice(0, i)
        .findLast((l) => l.trim() !== '')
        ?.trim() ?? '';
    const marker = NOT_RUN.exec(before);
    if (marker && !marker[1]) throw new Error(`line ${i + 1}: say why the block is not run`);
    if (['sh', 'bash', 'shell'].includes(info) && !marker) {
      blocks.push({ line: i + 1, code: lines.slice(i + 1, end).join('\n') });
    }
    i = end;
  }
  return blocks;
}

/** One bash script for a guide: stops at the first failing command and names the guide's line. */
function script(guide: string, blocks: Block[]): string {
  return [
    'set -Eeuo pipefail',
    `trap 'echo "docs/${guide}.md, block at line $__block: exit $? from: $BASH_COMMAND" >&2' ERR`,
    ...blocks.flatMap((b) => [`__block=${b.line}`, b.code]),
  ].join('\n');
}

function bash(code: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', code], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c;
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c;
    });
    child.on('close', (status) => resolve({ status, output }));
  });
}

describe('runnableBlocks', () => {
  it('takes the shell blocks, at their line, and leaves out the rest and the ones marked not run', () => {
    const md = [
      '# Guide', //                     1
      '```sh', //                       2
      'echo one', //                    3
      '```', //                         4
      '<!-- not run: a production host -->', // 5
      '', //                            6
      '```sh', //                       7
      'curl https://hub.example.org', // 8
      '```', //                         9
      '```json', //                     10
      '{}', //                          11
      '```', //                         12
      '- a list item:', //              13
      '  ```bash', //                   14
      '  echo two', //                  15
      '  ```', //                       16
      '````md', //                      17
      '```sh', //                       18
      'echo not a block of its own', // 19
      '```', //                         20
      '````', //                        21
    ].join('\n');
    expect(runnableBlocks(md)).toEqual([
      { line: 2, code: 'echo one' },
      { line: 14, code: '  echo two' },
    ]);
  });

  it('wants a reason for a block that does not run', () => {
    expect(() => runnableBlocks('<!-- not run: -->\n```sh\nls\n```')).toThrow('say why');
  });

  it('finds runnable blocks only in the guides this test runs', () => {
    const withBlocks = readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .filter((f) => runnableBlocks(readFileSync(join(ROOT, 'docs', f), 'utf8')).length > 0);
    expect(withBlocks.sort()).toEqual(GUIDES.map((g) => `${g}.md`).sort());
  });
});

describe('the guides, run as written against a local stack', () => {
  const work = mkdtempSync(join(tmpdir(), 'packtrust-docs-'));
  let stack: StackProcess;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // A checkout as a new user has it: the repository's files, and the stack's state under ./data.
    for (const name of readdirSync(ROOT)) {
      if (name !== 'data' && name !== '.git') symlinkSync(join(ROOT, name), join(work, name));
    }
    const settings = await stackEnv(join(work, 'data'));
    stack = startStack(settings);
    // The shell of a user with the same stack settings and nothing of this test run's npm, whose
    // global npm prefix (where the guides' `npm install --global .` links the commands) is theirs.
    const prefix = join(work, '.npm-global');
    env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^(npm_|PACKTRUST_|INIT_CWD$)/i.test(k)),
    ) as NodeJS.ProcessEnv;
    Object.assign(env, settings, {
      npm_config_prefix: prefix,
      npm_config_update_notifier: 'false',
      PATH: `${join(prefix, 'bin')}${delimiter}${process.env.PATH}`,
    });
    await stack.ready;
  }, 120_000);

  afterAll(async () => {
    if (stack) expect(await stopStack(stack.child)).toBe(0);
    rmSync(work, { recursive: true, force: true });
  });

  for (const guide of GUIDES) {
    it(`docs/${guide}.md`, async () => {
      const blocks = runnableBlocks(readFileSync(join(ROOT, 'docs', `${guide}.md`), 'utf8'));
      expect(blocks.length).toBeGreaterThan(0);
      const run = await bash(script(guide, blocks), work, env);
      expect(run.status, `${run.output.slice(-6000)}\n--- stack ---\n${stack.output().slice(-3000)}`).toBe(0);
    }, 240_000);
  }
});
