import { z } from 'zod';
import { BadRequest, defineError } from '../../common/src/errors.ts';
import { gtinProblem } from '../../common/src/gs1.ts';

export const MasterDataInvalid = defineError('HUB_MASTER_DATA_INVALID', 400, 'The master data is invalid');
export const NotOwner = defineError('HUB_NOT_OWNER', 403, 'Only the organisation that owns the product may do this');

const market = z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code');
const text = (max: number) => z.string().trim().min(1).max(max);

/** Product master data as the manufacturer sends it; the owner comes from the certificate, never from here. */
export const productInput = z.strictObject({
  productCode: z.string().superRefine((code, ctx) => {
    const problem = gtinProblem(code);
    if (problem) ctx.addIssue({ code: 'custom', message: `GTIN-14 ${problem}` });
  }),
  name: text(200),
  commonName: text(200),
  form: text(100),
  strength: text(100),
  packSize: z.number().int().min(1).max(100_000),
  markets: z
    .array(market)
    .min(1)
    .max(60)
    .refine((m) => new Set(m).size === m.length, 'markets must not repeat'),
});
export type ProductInput = z.output<typeof productInput>;

/** Recall and withdrawal say why. */
export const reasonInput = z.strictObject({ reason: text(500) });

/** Parses a JSON body against a schema; every problem is listed in the error. */
export function parseBody<S extends z.ZodType>(schema: S, body: Buffer): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadRequest('The body is not valid JSON');
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const errors = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new MasterDataInvalid(errors.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; '), { errors });
  }
  return result.data;
}
