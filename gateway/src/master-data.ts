import { gtinProblem } from '../../common/src/gs1.ts';
import { acceptOnly } from '../../common/src/http.ts';
import { OpenApiContract } from '../../common/src/openapi.ts';
import type { components } from '../../openapi/generated/hub.ts';
import { MasterDataInvalid } from './errors.ts';

export const hubContract = new OpenApiContract(new URL('../../openapi/hub.yaml', import.meta.url).pathname);

/**
 * The route options of a write: its body must be of a media type the contract gives the
 * operation (415 `UNSUPPORTED_MEDIA_TYPE` before the body is read, after the caller's identity).
 */
export const writeOf = (operationId: string) => ({
  preParsing: acceptOnly(hubContract.requestMediaTypes(operationId)),
});

export type ProductInput = components['schemas']['ProductInput'];
export type ReasonInput = components['schemas']['Reason'];

const parseProduct = hubContract.jsonBodyParser<ProductInput>('createProduct', MasterDataInvalid);

/** Product master data as the manufacturer sends it (the owner comes from the certificate, never from here). */
export function parseProductInput(body: Buffer): ProductInput {
  const input = parseProduct(body);
  // What JSON Schema cannot say: the GS1 check digit.
  const problem = gtinProblem(input.productCode);
  if (problem) {
    throw new MasterDataInvalid(`/productCode: GTIN-14 ${problem}`, {
      errors: [{ path: '/productCode', message: `GTIN-14 ${problem}` }],
    });
  }
  return input;
}

/** Recall and withdrawal say why. */
export const parseReason = hubContract.jsonBodyParser<ReasonInput>('recallBatch', MasterDataInvalid);
