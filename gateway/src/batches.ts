import { charset82Problem, expiryDate } from '../../common/src/gs1.ts';
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

/**
 * Reads a pack upload body: one serial per line (LF or CRLF; a final newline is optional).
 * Scans the buffer once, so 1,000,000 serials cost one string each. Every malformed serial and
 * every serial repeated inside the upload is reported (the first 100, with the count).
 */
export function parseSerials(body: Buffer): string[] {
  const serials: string[] = [];
  const seen = new Set<string>();
  const problems = new ProblemList();
  let start = 0;
  let line = 0;
  while (start < body.length) {
    let end = body.indexOf(10, start);
    if (end === -1) end = body.length;
    line++;
    const stop = end > start && body[end - 1] === 13 ? end - 1 : end;
    const serial = body.toString('latin1', start, stop);
    start = end + 1;
    const problem = charset82Problem(serial);
    if (problem) problems.add({ item: serial, line, problem: `serial ${problem}` });
    else if (seen.has(serial))
      problems.add({ item: serial, line, problem: 'serial appears more than once in this upload' });
    else {
      seen.add(serial);
      serials.push(serial);
    }
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
  return serials;
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
