/**
 * Keeps the durable record of refusals that anyone may cause (failed client authentications,
 * rate-limited requests) bounded, whatever a client sends: per counting window, the first
 * refusals of each key (a client and address) are written verbatim, up to a cap across all keys;
 * the others are only counted in memory, and one summary record per window gives the counts.
 * At most `verbatimPerWindow + 1` records per window, and at most `maxKeys` keys in memory.
 *
 * What a key is, what a record holds and where it is written are the caller's: `write` gets the
 * records of one durable write and must not throw (it logs its own failures).
 */
export interface RefusalAuditOptions<R> {
  /** Length of a counting window (ms). */
  intervalMs: number;
  /** Refusals of one key kept verbatim per window (the first ones). */
  verbatimPerKey: number;
  /** Refusals kept verbatim per window across all keys. */
  verbatimPerWindow: number;
  /** Keys counted one by one per window; the refusals of further keys are counted together. */
  maxKeys: number;
  write(records: R[]): Promise<void>;
  /** The summary record of a window in which some refusals were not written verbatim. */
  summary(window: RefusalWindow<R>): R;
}

export interface RefusalWindow<R> {
  from: string;
  to: string;
  /** Per key: its first refusal, how many there were, and how many of them were not written. */
  keys: { first: R; count: number; unrecorded: number }[];
  /** Refusals of keys beyond `maxKeys` (none of them written verbatim). */
  otherRefusals: number;
}

export class RefusalAudit<R> {
  private window = new Map<string, { first: R; count: number; unrecorded: number }>();
  private from = Date.now();
  private verbatim = 0;
  private unrecorded = 0;
  private otherRefusals = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: RefusalAuditOptions<R>) {
    this.timer = setInterval(() => void this.flush(), options.intervalMs);
    this.timer.unref();
  }

  /** Counts a refusal; resolves once it is durable when it is kept verbatim, at once otherwise. */
  record(key: string, record: R): Promise<void> {
    let entry = this.window.get(key);
    if (!entry) {
      if (this.window.size >= this.options.maxKeys) {
        this.otherRefusals++;
        this.unrecorded++;
        return Promise.resolve();
      }
      entry = { first: record, count: 0, unrecorded: 0 };
      this.window.set(key, entry);
    }
    entry.count++;
    if (entry.count <= this.options.verbatimPerKey && this.verbatim < this.options.verbatimPerWindow) {
      this.verbatim++;
      return this.track(this.options.write([record]));
    }
    entry.unrecorded++;
    this.unrecorded++;
    return Promise.resolve();
  }

  /** Ends the current window: writes its summary if some refusals were only counted. */
  flush(): Promise<void> {
    const now = Date.now();
    const window: RefusalWindow<R> = {
      from: new Date(this.from).toISOString(),
      to: new Date(now).toISOString(),
      keys: [...this.window.values()],
      otherRefusals: this.otherRefusals,
    };
    const needed = this.unrecorded > 0;
    this.window = new Map();
    this.from = now;
    this.verbatim = 0;
    this.unrecorded = 0;
    this.otherRefusals = 0;
    return needed ? this.track(this.options.write([this.options.summary(window)])) : Promise.resolve();
  }

  /** Stops the window timer, writes the last summary and waits for every write in flight. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    await Promise.all(this.inFlight);
  }

  private track(write: Promise<void>): Promise<void> {
    this.inFlight.add(write);
    return write.finally(() => this.inFlight.delete(write));
  }
}
