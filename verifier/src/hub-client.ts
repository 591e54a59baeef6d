import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { EVIDENCE_CHECKPOINT_HEADER } from '../../common/src/checkpoint.ts';
import {
  decodeRecords,
  decodeSnapshot,
  type FeedRecordEntry,
  type SnapshotLine,
} from '../../common/src/feed-format.ts';
import { decodeReceiptEvidence, EVIDENCE_HEADER } from '../../common/src/receipt-evidence.ts';
import { RequestSigner } from '../../common/src/signed-request.ts';
import type { components } from '../../openapi/generated/hub.ts';
import { HubRefused, HubUnavailable } from './errors.ts';

type PackEvent = components['schemas']['PackEvent'];
type PackEventResult = components['schemas']['PackEventResult'];
type Alert = components['schemas']['Alert'];

export interface HubClientOptions {
  hubUrl: string;
  market: string;
  /** The node's verifier-node certificate (PEM, chain may follow) and key, and the CA chain. */
  certPem: string;
  keyPem: string;
  caPem: string;
  /** How long a call may take, connect, send and answer together (config.ts DEFAULT_HUB_DEADLINE_MS). */
  deadlineMs: number;
}

/**
 * The node's mutual-TLS connection to the hub: the market's feed, and its writes (pack events,
 * alerts), each signed with RFC 9421 by the node's key like every write the hub accepts, so the
 * hub keeps them as evidence.
 *
 * Once the hub refuses the node's certificate (to any request), the client tells its listeners
 * and sends nothing more: every later call throws that refusal at once. The certificate is read
 * at start, so only a restart with a new one can change the answer.
 */
export class HubClient {
  private readonly dispatcher: Agent;
  private readonly signer: RequestSigner;
  private refusal: HubRefused | undefined;
  private readonly refusalListeners: ((refusal: HubRefused) => void)[] = [];
  private readonly checkpointListeners: ((note: string) => void)[] = [];

  constructor(private readonly options: HubClientOptions) {
    this.signer = new RequestSigner(options.certPem, options.keyPem);
    this.dispatcher = new Agent({
      // undici lets a request's abort signal end it only once connected: the TCP and TLS handshakes
      // get the deadline here (undici's own default is 10 s).
      connect: { cert: options.certPem, key: options.keyPem, ca: options.caPem, timeout: options.deadlineMs },
      keepAliveTimeout: 60_000,
      bodyTimeout: 0,
    });
  }

  /**
   * The market's snapshot, line by line. It is streamed (a market may hold millions of packs), so
   * no deadline covers it whole: its answer must begin within the deadline, and the node waits no
   * longer than that for each further part of it. The time the caller takes over the lines it is
   * given does not count: only a hub that sends nothing does.
   */
  async *snapshot(signal?: AbortSignal): AsyncGenerator<SnapshotLine> {
    const { deadlineMs } = this.options;
    const stalled = new AbortController();
    const stall = () => setTimeout(() => stalled.abort(), deadlineMs);
    let timer = stall();
    const both = signal ? AbortSignal.any([signal, stalled.signal]) : stalled.signal;
    let res: Awaited<ReturnType<HubClient['get']>>;
    try {
      res = await this.get(`/v1/feed/${this.options.market}/snapshot`, both);
    } catch (err) {
      if (stalled.signal.aborted) throw new HubUnavailable(`no snapshot answer from the hub within ${deadlineMs} ms`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    const chunks = res.body[Symbol.asyncIterator]();
    async function* watched(): AsyncGenerator<Buffer> {
      for (;;) {
        timer = stall();
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch (err) {
          throw new HubUnavailable(
            stalled.signal.aborted
              ? `the hub sent nothing more of the snapshot for ${deadlineMs} ms`
              : `snapshot not received: ${(err as Error).message}`,
          );
        } finally {
          clearTimeout(timer);
        }
        if (next.done) return;
        yield next.value;
      }
    }
    try {
      yield* decodeSnapshot(Readable.from(watched()));
    } finally {
      // A caller that stops reading early (a snapshot it found wrong) leaves no download behind.
      res.body.destroy();
    }
  }

  /** Records after `after`, waiting up to `waitMs` for the first; and the hub's newest sequence. */
  async records(
    after: number,
    limit: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<{ records: FeedRecordEntry[]; hubSeq: number }> {
    // The long-poll's own wait, plus the deadline of any call.
    const deadline = AbortSignal.timeout(waitMs + this.options.deadlineMs);
    const res = await this.get(
      `/v1/feed/${this.options.market}/records?after=${after}&limit=${limit}&wait=${waitMs}`,
      signal ? AbortSignal.any([signal, deadline]) : deadline,
    );
    const records = decodeRecords(await readText(res.body));
    const checkpoint = res.headers[EVIDENCE_CHECKPOINT_HEADER];
    if (typeof checkpoint === 'string') this.checkpointSeen(Buffer.from(checkpoint, 'base64url').toString('utf8'));
    return { records, hubSeq: Number(res.headers['x-feed-last-seq'] ?? 0) };
  }

  /** The hub's newest evidence checkpoint (a signed note), undefined while it has none. */
  async evidenceCheckpoint(): Promise<string | undefined> {
    try {
      const res = await this.get('/v1/evidence/checkpoint', AbortSignal.timeout(this.options.deadlineMs));
      return await readText(res.body);
    } catch (err) {
      if (err instanceof HubRefused && err.status === 404) return undefined;
      throw err;
    }
  }

  /** RFC 9162 §2.1.4 consistency proof between two sizes of the hub's evidence log. */
  async consistencyProof(first: number, second: number): Promise<Buffer[]> {
    const deadline = AbortSignal.timeout(this.options.deadlineMs);
    const res = await this.get(`/v1/evidence/proofs/consistency?first=${first}&second=${second}`, deadline);
    const { consistencyProof } = JSON.parse(await readText(res.body)) as { consistencyProof: string[] };
    return consistencyProof.map((h) => Buffer.from(h, 'base64'));
  }

  /** Asks the hub to decide pack state changes; one result per event, in order. */
  async sendEvents(events: PackEvent[]): Promise<PackEventResult[]> {
    const text = await this.post('/v1/packs/events', { events });
    return (JSON.parse(text) as { results: PackEventResult[] }).results;
  }

  /** Delivers alerts to the hub (stored there for the products' owners). */
  async sendAlerts(alerts: Alert[]): Promise<void> {
    await this.post('/v1/alerts', { alerts });
  }

  /** Calls `listener` once, when the hub first refuses the node's certificate. */
  onCertificateRefused(listener: (refusal: HubRefused) => void): void {
    this.refusalListeners.push(listener);
  }

  /** An answer that is not a success, as an error; a certificate refusal is kept and told. */
  private failure(status: number, path: string, body: string): Error {
    const err = answerError(status, path, body);
    if (err instanceof HubRefused && err.certificateRefused && !this.refusal) {
      this.refusal = err;
      for (const listener of this.refusalListeners) listener(err);
    }
    return err;
  }

  /** A signed write; the hub's answer (2xx) as text, else HubUnavailable. */
  private async post(path: string, body: unknown): Promise<string> {
    if (this.refusal) throw this.refusal;
    const url = new URL(path, this.options.hubUrl);
    const payload = Buffer.from(JSON.stringify(body));
    const { headers } = this.signer.sign('POST', url.toString(), payload);
    let res: Awaited<ReturnType<typeof request>>;
    // One deadline for connecting, sending and the whole answer, also on a kept-alive socket: past
    // it the hub counts as unreachable (a state change then waits in the outbox, answered pending).
    const signal = AbortSignal.timeout(this.options.deadlineMs);
    try {
      res = await request(url, { method: 'POST', dispatcher: this.dispatcher, headers, body: payload, signal });
    } catch (err) {
      throw new HubUnavailable(`hub unreachable: ${(err as Error).message}`);
    }
    const text = await readText(res.body);
    // The receipt of this write (also of a 403 the hub kept as evidence) ends a checkpoint: the
    // node holds the newest, so the hub cannot later take this write back unseen.
    const evidence = res.headers[EVIDENCE_HEADER];
    if (typeof evidence === 'string') this.checkpointSeen(decodeReceiptEvidence(evidence).checkpoint);
    if (res.statusCode < 200 || res.statusCode >= 300) throw this.failure(res.statusCode, path, text);
    return text;
  }

  /** Calls `listener` with every evidence checkpoint a hub answer carries (feed answers and write receipts). */
  onCheckpoint(listener: (note: string) => void): void {
    this.checkpointListeners.push(listener);
  }

  private checkpointSeen(note: string): void {
    for (const listener of this.checkpointListeners) listener(note);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private async get(path: string, signal?: AbortSignal) {
    if (this.refusal) throw this.refusal;
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
    if (res.statusCode !== 200) throw this.failure(res.statusCode, path, await res.body.text());
    return res;
  }
}

/** A 4xx answer is a refusal (HubRefused, with the problem's code); anything else is unavailability. */
function answerError(status: number, path: string, body: string): Error {
  const message = `hub answered ${status} for ${path}: ${body.slice(0, 300)}`;
  if (status < 400 || status >= 500) return new HubUnavailable(message);
  let code = `HTTP_${status}`;
  let detail: string | undefined;
  try {
    const problem = JSON.parse(body) as { code?: unknown; detail?: unknown };
    if (typeof problem.code === 'string') code = problem.code;
    if (typeof problem.detail === 'string') detail = problem.detail.slice(0, 300);
  } catch {
    // Not a problem document: the status alone says what happened.
  }
  return new HubRefused(status, code, message, detail);
}

/** The answer's body as text; a deadline or a broken connection while reading is unavailability. */
async function readText(body: { text(): Promise<string> }): Promise<string> {
  try {
    return await body.text();
  } catch (err) {
    throw new HubUnavailable(`hub answer not received: ${(err as Error).message}`);
  }
}
