import { BadRequest, PacktrustError } from '../../common/src/errors.ts';
import { Gs1Error, type PackIdentifier, parseScan, validateIdentifier } from '../../common/src/gs1.ts';
import type { components } from '../../openapi/generated/verifier.ts';
import { DataMatrixInvalid, IdentifierConflict, IdentifierInvalid } from './errors.ts';
import type { PackQuery } from './verification.ts';

/**
 * What a pharmacy's request names, read and checked before anything is done for it
 * (openapi/verifier.yaml `VerifyRequest`, `ChangeRequest`). Pure. A request that cannot name a
 * real pack is the caller's mistake: a 400 problem, no alert, no change. A bulk request is
 * checked whole before its first pack is acted on.
 */

type PackFields = Pick<components['schemas']['VerifyRequest'], keyof PackQuery | 'dataMatrix'>;

/** The identifier's fields and their application identifiers (docs/domain.md §1). */
const FIELDS = [
  ['productCode', '01'],
  ['serial', '21'],
  ['batch', '10'],
  ['expiry', '17'],
] as const satisfies readonly (readonly [keyof PackQuery, string])[];

/** Bad packs of a bulk request listed in its problem document; the detail counts the rest. */
const LISTED_FAILURES = 100;

/**
 * The pack a request names: its four fields, or its Data Matrix content, checked alike
 * (common/src/gs1.ts). Fields beside a Data Matrix must repeat its own (a scanner's software may
 * send both); a field that differs is refused, never silently resolved.
 */
export function packOf(body: PackFields): PackQuery {
  if (body.dataMatrix !== undefined) {
    let id: PackIdentifier;
    try {
      id = parseScan(body.dataMatrix);
    } catch (err) {
      if (err instanceof Gs1Error) throw new DataMatrixInvalid(err.message);
      throw err;
    }
    const conflicts = FIELDS.filter(([f]) => body[f] !== undefined && body[f] !== id[f]).map(
      ([f, ai]) => `${f} ${JSON.stringify(body[f])} is not the Data Matrix's (${ai}) ${JSON.stringify(id[f])}`,
    );
    if (conflicts.length > 0) throw new IdentifierConflict(conflicts.join('; '));
    return { productCode: id.productCode, serial: id.serial, batch: id.batch, expiry: id.expiry };
  }
  const { productCode, serial, batch, expiry } = body;
  if (!productCode || !serial || !batch || !expiry) {
    throw new BadRequest('Give productCode, serial, batch and expiry, or dataMatrix');
  }
  const q = { productCode, serial, batch, expiry };
  const problems = validateIdentifier(q);
  if (problems.length > 0) throw new IdentifierInvalid(problems.join('; '));
  return q;
}

/**
 * `read` applied to every pack of a bulk request. When any is refused, the request is: with the
 * code of the first refusal and `errors` listing the bad packs (`path`, `code`, `message`).
 */
export function eachPack<B, T>(packs: readonly B[], read: (body: B) => T): T[] {
  const out: T[] = new Array(packs.length);
  const failures: { path: string; code: string; message: string }[] = [];
  let first: PacktrustError | undefined;
  let firstIndex = 0;
  let failed = 0;
  for (const [i, body] of packs.entries()) {
    try {
      out[i] = read(body);
    } catch (err) {
      if (!(err instanceof PacktrustError) || err.status !== 400) throw err;
      if (!first) [first, firstIndex] = [err, i];
      if (++failed <= LISTED_FAILURES) failures.push({ path: `/packs/${i}`, code: err.code, message: err.message });
    }
  }
  if (first) {
    const others = failed - 1;
    const detail = `pack ${firstIndex} of ${packs.length}: ${first.message}${others > 0 ? `; and ${others} other${others > 1 ? 's' : ''}` : ''}`;
    throw new PacktrustError(first.code, first.status, first.title, detail, { errors: failures });
  }
  return out;
}
