import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { contracts, generate, outputPath } from '../../scripts/openapi.ts';

describe('generated OpenAPI types', () => {
  it.each(contracts())('openapi/generated for %s is current (run "npm run openapi" if not)', async (contract) => {
    expect(readFileSync(outputPath(contract), 'utf8')).toBe(await generate(contract));
  });
});
