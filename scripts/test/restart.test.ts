/**
 * The local stack survives a crash: the gateway of a running `npm start` is killed with SIGKILL,
 * a verifier node keeps answering pharmacies while the hub is gone, and the supervisor starts the
 * gateway again, which then serves; killed again within the window, it stops the stack.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pharmacyToken, type StackProcess, stackEnv, startStack, stopStack } from './stack-process.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'packtrust-restart-'));
let env: Record<string, string>;
let stack: StackProcess;
let agent: Agent;
/** The gateway the supervisor started again. */
let restartedPid: number;

/** A pack the DE replica does not know: the node answers from its replica alone. */
const PACK = { productCode: '09506000134352', serial: 'RESTART1', batch: 'B1', expiry: '301231' };
const ANSWER = {
  status: 200,
  type: 'application/json; charset=utf-8',
  json: {
    ...PACK,
    operation: 'verify',
    returnCode: 'PRODUCT_UNKNOWN',
    detail: 'product 09506000134352 is not known in this market',
    alert: { code: 'A3', id: expect.any(String) },
  },
};

async function get(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(url, { dispatcher: agent });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

async function verifyAtDe1(token: string) {
  const res = await request(`https://127.0.0.1:${env.PACKTRUST_VERIFIER_BASE_PORT}/v1/packs/verify`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(PACK),
  });
  return { status: res.statusCode, type: res.headers['content-type'], json: await res.body.json() };
}

/** The pid of the gateway process that printed `gateway listening` after `from` characters of output. */
async function gatewayPid(from = 0): Promise<number> {
  const line = await stack.line(/^\[gateway\] .*"msg":"gateway listening"/, from);
  return (JSON.parse(line.slice('[gateway] '.length)) as { pid: number }).pid;
}

beforeAll(async () => {
  env = {
    ...(await stackEnv(dataDir)),
    // Long enough that the node is asked while the hub is surely down; two crashes stop the stack.
    PACKTRUST_RESTART_DELAY_MS: '4000',
    PACKTRUST_RESTART_LIMIT: '2',
  };
  stack = startStack(env);
  await stack.ready;
  agent = new Agent({ connect: { ca: readFileSync(join(dataDir, 'ca', 'chain.pem'), 'utf8') } });
}, 120_000);

afterAll(async () => {
  await agent?.close();
  if (stack) await stopStack(stack.child);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start when a service crashes', () => {
  const gatewayHealth = () => get(`https://127.0.0.1:${env.PACKTRUST_GATEWAY_PORT}/health`);

  it('restarts a killed gateway after its back-off; a node keeps answering meanwhile', async () => {
    const token = await pharmacyToken(env, 'DE');
    expect(await verifyAtDe1(token)).toEqual(ANSWER);

    const killedPid = await gatewayPid();
    const mark = stack.output().length;
    process.kill(killedPid, 'SIGKILL');
    expect(await stack.line(/CRASHED/, mark)).toMatch(
      /^\[stack\] gateway CRASHED \(signal SIGKILL\) after \d+\.\d s; restart 1 in 4 s \(2 crashes within 120 s stop the stack\)$/,
    );
    // The node has found the hub gone (nothing listens on its port any more)…
    await stack.line(/^\[de-1\] .*ECONNREFUSED.*hub unavailable; retrying/, mark);
    // …and answers as before, from its replica; the hub is still down after that answer.
    expect(await verifyAtDe1(token)).toEqual(ANSWER);
    await expect(gatewayHealth()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(stack.output().slice(mark)).not.toContain('gateway is back');

    expect(await stack.line(/gateway is back/, mark)).toMatch(
      /^\[stack\] gateway is back: restart 1 ready in \d+\.\d s$/,
    );
    restartedPid = await gatewayPid(mark);
    expect(restartedPid).not.toBe(killedPid);
    expect(await gatewayHealth()).toEqual({ status: 200, json: { status: 'ok' } });
    // The restarted hub issues tokens, and the node accepts them.
    expect(await verifyAtDe1(await pharmacyToken(env, 'DE'))).toEqual(ANSWER);
    expect(stack.child.exitCode).toBeNull();
  }, 120_000);

  it('stops the stack, with a message and exit code 1, when the gateway keeps crashing', async () => {
    const mark = stack.output().length;
    const exited = new Promise<number | null>((resolve) => stack.child.once('exit', resolve));
    process.kill(restartedPid, 'SIGKILL');
    expect(await exited).toBe(1);
    expect(stack.output().slice(mark)).toMatch(
      /\[stack\] gateway crashed \(signal SIGKILL\) after \d+\.\d s: 2 crashes within 120 s, it keeps crashing; stopping the stack\n/,
    );
    expect(stack.output().slice(mark)).not.toContain('CRASHED');
    for (const name of ['ca', 'de-1', 'de-2', 'fr-1']) expect(stack.output()).toContain(`[stack] ${name} stopped`);
  }, 60_000);
});
