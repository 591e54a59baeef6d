import { CHARSET_82, charset82Problem, expiryDate } from '../../common/src/gs1.ts';
import { BadRequest, BatchExpired, MasterDataInvalid, PayloadTooLarge } from './errors.ts';

const MAX_SERIALS_PER_UPLOAD = 1_000_000;
/** How many failed items an error lists; the count covers them all. */
const MAX_LISTED_PROBLEMS = 100;

export interface ItemProblem {
  item: string;
  line?: number;
  problem: string;
}

/** Collects item problems: the first {@link MAX_LISTED_PROBLEMS} with their total count. */
export class ProblemList {
  readonly items: ItemProblem[] = [];
  count = 0;

  add(problem: ItemProblem): void {
    this.count++;
    if (this.items.length < MAX_LISTED_PROBLEMS) this.items.push(problem);
  }

  toExtensions(): Record<string, unknown> {
    return { failed: this.count, items: this.items };
  }
}

/** 1 for the bytes of GS1 character set 82, so a serial is checked byte by byte as the body is scanned. */
const SET_82_BYTES = new Uint8Array(256);
for (const c of CHARSET_82) SET_82_BYTES[c.charCodeAt(0)] = 1;
const MAX_SERIAL_LENGTH = 20;

/**
 * Reads a pack upload body: one serial per line (LF or CRLF; a final newline is optional).
 * Scans the buffer once, checking each serial's bytes against set 82 as it goes, so 1,000,000
 * serials cost one string each. Every malformed serial is reported (the first 100, with the
 * count), and so is every serial repeated inside the upload, unless `repeats` is `later`: an
 * upload leaves that to the registration of its packs, which finds a repeat as a serial taken and
 * then calls {@link refuseRepeatedSerials} (routes/manufacturer.ts), so the common case pays for
 * no set of a million strings.
 */
export function parseSerials(body: Buffer, options: { repeats?: 'refuse' | 'later' } = {}): string[] {
  const serials: string[] = [];
  const problems = new ProblemList();
  let start = 0;
  let line = 0;
  while (start < body.length) {
    let end = body.indexOf(10, start);
    if (end === -1) end = body.length;
    line++;
    const stop = end > start && body[end - 1] === 13 ? end - 1 : end;
    let valid = stop > start && stop - start <= MAX_SERIAL_LENGTH;
    for (let i = start; valid && i < stop; i++) valid = SET_82_BYTES[body[i]!] === 1;
    const serial = body.toString('latin1', start, stop);
    start = end + 1;
    if (valid) serials.push(serial);
    else problems.add({ item: serial, line, problem: `serial ${charset82Problem(serial)}` });
    if (serials.length > MAX_SERIALS_PER_UPLOAD) {
      throw new PayloadTooLarge(
        `An upload carries at most ${MAX_SERIALS_PER_UPLOAD} serials; split the batch into several uploads`,
      );
    }
  }
  if (problems.count > 0) {
    throw new MasterDataInvalid(`${problems.count} serial(s) are invalid`, problems.toExtensions());
  }
  if (serials.length === 0) throw new BadRequest('The upload holds no serial numbers (one per line)');
  if (options.repeats !== 'later') refuseRepeatedSerials(serials);
  return serials;
}

/**
 * Refuses serials that `parseSerials` read (so serial i is on line i + 1) when one appears more
 * than once: 400 with each repeat and its line.
 */
export function refuseRepeatedSerials(serials: readonly string[]): void {
  const seen = new Set<string>();
  const problems = new ProblemList();
  serials.forEach((serial, i) => {
    if (seen.has(serial))
      problems.add({ item: serial, line: i + 1, problem: 'serial appears more than once in this upload' });
    else seen.add(serial);
  });
  if (problems.count > 0) {
    throw new MasterDataInvalid(`${problems.count} serial(s) are invalid`, problems.toExtensions());
  }
}

/**
 * Checks the batch id and expiry of an upload, listing both problems at once; then refuses a
 * batch whose expiry date is before `today` (YYYY-MM-DD, UTC), unless `acceptExpired`: its packs
 * could never be dispensed, and an upload of them is more likely a wrong date than a wish.
 */
export function checkBatchFields(
  batch: string,
  expiry: string | undefined,
  options: { acceptExpired: boolean; today: string },
): { expiry: string; expiryDate: string } {
  const problems: string[] = [];
  const batchProblem = charset82Problem(batch);
  if (batchProblem) problems.push(`batch ${batchProblem}`);
  const date = expiry ? expiryDate(expiry) : undefined;
  if (!date)
    problems.push(
      `expiry must be a YYMMDD date (DD=00 for the end of the month), got ${JSON.stringify(expiry ?? null)}`,
    );
  if (problems.length > 0) throw new MasterDataInvalid(problems.join('; '));
  if (!options.acceptExpired && date! < options.today) {
    throw new BatchExpired(`Batch ${batch} expired on ${date}; packs of an expired batch are not registered`);
  }
  return { expiry: expiry!, expiryDate: date! };
}
