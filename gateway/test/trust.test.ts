import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, type TestCa } from '../../ca/test/fixtures.ts';
import { createLogger } from '../../common/src/log.ts';
import { CaTrust } from '../src/trust.ts';

/**
 * A CA's public listener as raw TCP on 127.0.0.1:0, which answers a request as `mode` says:
 * `silent` accepts the connection and never answers (a hung process, a stalled network),
 * `stalled` sends the headers and half the CRL then nothing more, `answer` sends the whole CRL.
 * It keeps how long each request was in flight (from its first byte until its connection closed)
 * and how many were at once. (An idle connection, which undici opens after an aborted request and
 * keeps for its keep-alive time, carries no request and counts for nothing.)
 */
class FakeCa {
  mode: 'silent' | 'stalled' | 'answer' = 'silent';
  crl: Buffer = Buffer.alloc(0);
  /** How long each request that ended was in flight, ms, in the order they ended. */
  readonly lifetimes: number[] = [];
  /** Requests received. */
  asked = 0;
  inFlight = 0;
  maxInFlight = 0;
  private waiters: (() => void)[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly server: Server = createServer((socket) => {
    this.sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    socket.once('data', () => {
      const asked = performance.now();
      this.asked++;
      this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
      this.changed();
      socket.on('close', () => {
        this.inFlight--;
        this.lifetimes.push(performance.now() - asked);
        this.changed();
      });
      if (this.mode === 'silent') return;
      const head = `HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: ${this.crl.length}\r\nConnection: close\r\n\r\n`;
      socket.write(head);
      if (this.mode === 'answer') socket.end(this.crl);
      else socket.write(this.crl.subarray(0, this.crl.length >> 1));
    });
  });

  /** Resolves once `condition` holds, looked at whenever a request arrives or ends. */
  when(condition: (ca: this) => boolean): Promise<void> {
    if (condition(this)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!condition(this)) return;
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve();
      };
      this.waiters.push(check);
    });
  }

  private changed(): void {
    for (const check of [...this.waiters]) check();
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/crl`;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const DEADLINE_MS = 500;
/** A busy machine's margin over the deadline; far below the minutes an HTTP library would wait. */
const SLACK_MS = 4000;
const logger = createLogger('trust-test', 'silent');

let t: TestCa;
let ca: FakeCa;
let trust: CaTrust;
let crlUrl: string;

beforeAll(async () => {
  t = await createTestCa();
});
afterAll(() => t.cleanup());

afterEach(async () => {
  trust?.stop();
  await ca?.close();
});

async function startWith(
  mode: FakeCa['mode'],
): Promise<{ firstPollMs: number; held: ReturnType<CaTrust['crlStatus']> }> {
  ca = new FakeCa();
  ca.crl = t.ca.currentCrl();
  crlUrl = await ca.listen();
  trust = new CaTrust(t.ca.chainPem());
  await trust.applyCrl(t.ca.currentCrl());
  const held = trust.crlStatus();
  ca.mode = mode;
  const started = performance.now();
  await trust.startPolling(crlUrl, { intervalMs: 100, deadlineMs: DEADLINE_MS }, logger);
  return { firstPollMs: performance.now() - started, held };
}

describe('CaTrust.startPolling', () => {
  it('gives up on a CA that accepts the connection and never answers at the deadline, keeps its CRL, and never overlaps polls', async () => {
    const { firstPollMs, held } = await startWith('silent');
    // The first poll (the gateway's start waits for it) ends at the deadline, not the poll interval's multiple or minutes.
    expect(firstPollMs).toBeGreaterThanOrEqual(DEADLINE_MS - 5);
    expect(firstPollMs).toBeLessThan(DEADLINE_MS + SLACK_MS);
    expect(trust.crlStatus()).toEqual(held);
    expect(trust.crlCurrent()).toBe(true);

    // Polls go on, every one given up at its deadline, one request at a time (the interval is 100 ms).
    await ca.when((c) => c.lifetimes.length >= 4);
    for (const ms of ca.lifetimes) expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
    expect(ca.maxInFlight).toBe(1);
    expect(trust.crlStatus()).toEqual(held);

    // The CA answers again, with a newer CRL: the next poll takes it.
    const serial = t.ca.list()[0]!.serial;
    await t.ca.revoke(serial, 'keyCompromise', 'test');
    ca.crl = t.ca.currentCrl();
    ca.mode = 'answer';
    // The request after next: the one before it, answered, has ended with its CRL applied, as polls never overlap.
    const next = ca.asked + 2;
    await ca.when((c) => c.asked >= next);
    expect(trust.crlStatus()).toMatchObject({ number: held.number + 1, revoked: held.revoked + 1 });
    expect(trust.isRevoked(serial)).toBe(true);
  });

  it('gives up on a CA that stops half-way through the CRL: the deadline covers the whole answer', async () => {
    const { firstPollMs, held } = await startWith('stalled');
    expect(firstPollMs).toBeGreaterThanOrEqual(DEADLINE_MS - 5);
    expect(firstPollMs).toBeLessThan(DEADLINE_MS + SLACK_MS);
    await ca.when((c) => c.lifetimes.length >= 3);
    expect(ca.maxInFlight).toBe(1);
    expect(trust.crlStatus()).toEqual(held);
    expect(trust.crlCurrent()).toBe(true);
  });

  it('ends a call in flight when stopped', async () => {
    ca = new FakeCa();
    crlUrl = await ca.listen();
    trust = new CaTrust(t.ca.chainPem());
    const polling = trust.startPolling(crlUrl, { intervalMs: 100, deadlineMs: 60_000 }, logger);
    await ca.when((c) => c.inFlight === 1);
    trust.stop();
    await polling;
    await ca.when((c) => c.inFlight === 0);
    expect(ca.lifetimes).toHaveLength(1);
    expect(ca.lifetimes[0]).toBeLessThan(SLACK_MS);
  });
});
