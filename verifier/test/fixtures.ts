import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { createLogger } from '../../common/src/log.ts';
import { type Credential, type Pharmacy, startTestHub, type TestHub } from '../../gateway/test/fixtures.ts';
import { type RunningVerifierNode, startVerifierNode, type VerifierNodeOptions } from '../src/service.ts';

const logger = createLogger('node-test', process.env.NODE_TEST_LOG ?? 'silent');

/**
 * A real verifier node of `market` on 127.0.0.1:0 following `hub`, with a verifier-node
 * certificate its CA issued, its data under `dir/<nodeId>`, and a short feed long-poll.
 */
export async function startTestNode(
  hub: TestHub,
  market: string,
  nodeId: string,
  dir: string,
  overrides: Partial<VerifierNodeOptions> = {},
  cred?: Credential,
): Promise<RunningVerifierNode> {
  cred ??= await nodeCredential(hub, market);
  return startVerifierNode({
    market,
    nodeId,
    hubUrl: hub.hubUrl,
    issuer: hub.oauth.issuer,
    audience: `urn:packtrust:verifier:${market}`,
    dataDir: join(dir, nodeId),
    host: '127.0.0.1',
    port: 0,
    certPem: cred.certPem,
    keyPem: cred.keyPem,
    caPem: hub.t.ca.chainPem(),
    feedWaitMs: 500,
    evidenceLogKey: hub.notary.verifierKey,
    logger,
    ...overrides,
  });
}

/** A verifier-node certificate of `market` for 127.0.0.1, issued by the hub's CA. */
export function nodeCredential(hub: TestHub, market: string): Promise<Credential> {
  return hub.credential('verifier-node', `NMVO-${market}`, undefined, {
    market,
    ip: ['127.0.0.1'],
    dns: ['localhost'],
  });
}

/** A node's answer as it came off the wire. */
export interface NodeAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * What a verifier node test starts from: a hub with a seeded product, node `de-1` of DE following
 * it and caught up, an undici Agent that trusts the CA's chain, and a registered pharmacy.
 */
export interface NodeHarness {
  hub: TestHub;
  /** The running node; a test that restarts it puts the new one here, and `send` and `close` use it. */
  node: RunningVerifierNode;
  /** The node's certificate, issued for it before it started. */
  nodeCred: Credential;
  /** The temporary directory the node keeps its data under (`<dir>/de-1`); removed by `close`. */
  dir: string;
  dispatcher: Agent;
  /** The serials seeded, in batch B1. */
  serials: string[];
  pharmacy: Pharmacy;
  /** An access token of `pharmacy`, taken once the node has caught up. */
  token: string;
  /**
   * Sends `body` as JSON with POST, or GET without one, to `path` at `at` (default: `node`), with
   * `bearer` (default: `token`; none when empty) and any extra `headers`.
   */
  send(
    path: string,
    options?: { body?: unknown; bearer?: string; headers?: Record<string, string>; at?: RunningVerifierNode },
  ): Promise<NodeAnswer>;
  /** `send`, with the answer as most tests compare it: the status and the parsed JSON body. */
  call(path: string, body?: unknown, bearer?: string): Promise<{ status: number; json: Record<string, unknown> }>;
  /** Closes the dispatcher, the node and the hub, and removes `dir`. */
  close(): Promise<void>;
}

/** The product every harness seeds (prefix 9506000, owner ACME). */
export const CODE = '09506000134352';

/**
 * Starts a {@link NodeHarness} in a temporary directory named after `name`. `seed` is how many
 * serials `hub.seedProduct` registers for CODE in DE, or a function that seeds the hub itself;
 * `node` is handed to startTestNode, or worked out from the hub (for a node that reaches it
 * through something in between).
 */
export async function startNodeHarness(options: {
  name: string;
  seed: number | ((hub: TestHub) => Promise<string[]>);
  hub?: Parameters<typeof startTestHub>[0];
  node?: Partial<VerifierNodeOptions> | ((hub: TestHub) => Promise<Partial<VerifierNodeOptions>>);
  /** The pharmacy's location; default DE-APO-1. */
  pharmacy?: string;
}): Promise<NodeHarness> {
  const dir = mkdtempSync(join(tmpdir(), `packtrust-${options.name}-`));
  const hub = await startTestHub(options.hub);
  const { seed, node: overrides = {} } = options;
  const serials = typeof seed === 'number' ? await hub.seedProduct(CODE, ['DE'], seed) : await seed(hub);
  const nodeCred = await nodeCredential(hub, 'DE');
  const nodeOptions = typeof overrides === 'function' ? await overrides(hub) : overrides;
  const node = await startTestNode(hub, 'DE', 'de-1', dir, nodeOptions, nodeCred);
  const dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
  const pharmacy = await hub.pharmacy('DE', options.pharmacy ?? 'DE-APO-1');
  await node.replicator.waitFor(hub.store.feed('DE').last()!.seq, 30_000);
  const harness: NodeHarness = {
    hub,
    node,
    nodeCred,
    dir,
    dispatcher,
    serials,
    pharmacy,
    token: await pharmacy.token(),
    async send(path, { body, bearer = harness.token, headers = {}, at = harness.node } = {}) {
      const res = await request(`${at.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        dispatcher,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return {
        status: res.statusCode,
        headers: res.headers as Record<string, string>,
        body: Buffer.from(await res.body.arrayBuffer()),
      };
    },
    async call(path, body, bearer) {
      const a = await harness.send(path, { body, ...(bearer === undefined ? {} : { bearer }) });
      return { status: a.status, json: JSON.parse(a.body.toString()) };
    },
    async close() {
      await dispatcher.close();
      await harness.node.close();
      await hub.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Polls `check` until it holds, within a budget that survives a loaded machine. */
export async function until(what: string, check: () => boolean | Promise<boolean>, budgetMs = 30_000): Promise<void> {
  const deadline = Date.now() + budgetMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A TCP relay to `port` that can stop passing bytes (frozen) and pass what it held when thawed. */
export class FreezableRelay {
  private frozen = false;
  /** Bytes from upstream still passed before the relay freezes by itself (`freezeAfter`). */
  private allowance = Number.POSITIVE_INFINITY;
  private readonly held: (() => void)[] = [];
  private readonly sockets = new Set<Socket>();
  readonly server: Server;

  constructor(port: number) {
    this.server = createServer((client) => {
      const upstream = connect(port, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      const pass = (from: Socket, to: Socket) => {
        from.on('data', (chunk: Buffer) => {
          if (from === upstream && !this.frozen) {
            this.allowance -= chunk.length;
            if (this.allowance < 0) this.frozen = true;
          }
          if (this.frozen) this.held.push(() => to.writable && to.write(chunk));
          else if (to.writable) to.write(chunk);
        });
        // A side that leaves while frozen leaves after what it sent has been passed on.
        from.on('end', () => (this.frozen ? this.held.push(() => to.end()) : to.end()));
      };
      pass(client, upstream);
      pass(upstream, client);
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as { port: number }).port)),
    );
  }

  /** How many chunks it holds back while frozen (a request in flight to the frozen hub shows here). */
  get holding(): number {
    return this.held.length;
  }

  freeze(): void {
    this.frozen = true;
  }

  /** Passes `bytes` more from upstream (the rest of the chunk that crosses it included), then freezes. */
  freezeAfter(bytes: number): void {
    this.allowance = bytes;
  }

  thaw(): void {
    this.frozen = false;
    this.allowance = Number.POSITIVE_INFINITY;
    for (const send of this.held.splice(0)) send();
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
