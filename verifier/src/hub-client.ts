import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import type { ChainEntry } from '../../common/src/hash-chain.ts';
import type { FeedBody } from './replica.ts';

export interface HubClientOptions {
  hubUrl: string;
  market: string;
  /** The node's verifier-node certificate (PEM, chain may follow) and key, and the CA chain. */
  certPem: string;
  keyPem: string;
  caPem: string;
}

export type SnapshotLine =
  | { type: 'snapshot'; market: string; seq: number; hash: string }
  | { type: 'product'; product: Record<string, unknown> }
  | { type: 'batch'; batch: Record<string, unknown> }
  | { type: 'packs'; productCode: string; count: number; packs: string }
  | { type: 'client-disabled'; clientId: string }
  | { type: 'end'; products: number; batches: number; packs: number };

export class HubUnavailable extends Error {}

/** The node's mutual-TLS connection to the hub: the market's feed, and (later) pack events and alerts. */
export class HubClient {
  private readonly dispatcher: Agent;

  constructor(private readonly options: HubClientOptions) {
    this.dispatcher = new Agent({
      connect: { cert: options.certPem, key: options.keyPem, ca: options.caPem },
      keepAliveTimeout: 60_000,
      bodyTimeout: 0,
    });
  }

  /** The market's snapshot, line by line (streamed: a market may hold millions of packs). */
  async *snapshot(signal?: AbortSignal): AsyncGenerator<SnapshotLine> {
    const res = await this.get(`/v1/feed/${this.options.market}/snapshot`, signal);
    const lines = createInterface({ input: res.body, crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines) if (line) yield JSON.parse(line) as SnapshotLine;
  }

  /** Records after `after`, waiting up to `waitMs` for the first; and the hub's newest sequence. */
  async records(
    after: number,
    limit: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<{ records: ChainEntry<FeedBody>[]; hubSeq: number }> {
    const res = await this.get(
      `/v1/feed/${this.options.market}/records?after=${after}&limit=${limit}&wait=${waitMs}`,
      signal,
    );
    const text = await res.body.text();
    const records = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ChainEntry<FeedBody>);
    return { records, hubSeq: Number(res.headers['x-feed-last-seq'] ?? 0) };
  }

  /** Asks the hub to decide pack state changes; one result per event, in order. */
  async sendEvents(
    events: unknown[],
  ): Promise<{ txId: string; accepted: boolean; code: string; state?: string; alert?: string; detail: string }[]> {
    const text = await this.post('/v1/packs/events', { events });
    return (JSON.parse(text) as { results: [] }).results;
  }

  private async post(path: string, body: unknown): Promise<string> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(new URL(path, this.options.hubUrl), {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    } catch (err) {
      throw new HubUnavailable(`hub unreachable: ${(err as Error).message}`);
    }
    const text = await res.body.text();
    if (res.statusCode !== 200)
      throw new HubUnavailable(`hub answered ${res.statusCode} for ${path}: ${text.slice(0, 300)}`);
    return text;
  }

  /** Delivers alerts to the hub (stored there for the products' owners). */
  async sendAlerts(alerts: unknown[]): Promise<void> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(new URL('/v1/alerts', this.options.hubUrl), {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ alerts }),
      });
    } catch (err) {
      throw new HubUnavailable(`hub unreachable: ${(err as Error).message}`);
    }
    const text = await res.body.text();
    if (res.statusCode !== 200)
      throw new HubUnavailable(`hub refused alerts (${res.statusCode}): ${text.slice(0, 300)}`);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private async get(path: string, signal?: AbortSignal) {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(new URL(path, this.options.hubUrl), {
        dispatcher: this.dispatcher,
        headersTimeout: 90_000,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new HubUnavailable(`hub unreachable: ${(err as Error).message}`);
    }
    if (res.statusCode !== 200) {
      const body = await res.body.text();
      throw new HubUnavailable(`hub answered ${res.statusCode} for ${path}: ${body.slice(0, 300)}`);
    }
    return res;
  }
}
