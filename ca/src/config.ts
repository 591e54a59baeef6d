import { z } from 'zod';
import { loadConfig } from '../../common/src/config.ts';
import { httpTimeoutsSchema } from '../../common/src/http.ts';
import { KEY_ALGORITHMS } from './keys.ts';

const port = z.coerce.number().int().min(0).max(65535);

/** The CA service's configuration; every key can come from a file, `PACKTRUST_CA_*` or a flag. */
const caConfigSchema = z.object({
  dataDir: z.string().min(1).default('./data/ca'),
  host: z.string().min(1).default('127.0.0.1'),
  publicPort: port.default(7080),
  adminPort: port.default(7443),
  /** Base URL written into issued certificates (CRL distribution point, OCSP); set at init. */
  publicUrl: z.url().optional(),
  passphraseFile: z.string().optional(),
  keyAlgorithm: z.enum(KEY_ALGORITHMS).default('P-256'),
  caName: z.string().min(1).max(48).default('packtrust'),
  crlValidityHours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(24),
  /** A new CRL is produced this long before the current one's nextUpdate. */
  crlRefreshMarginMinutes: z.coerce.number().int().min(1).default(60),
  /** How long a client may take on either listener (headers, whole request, idle): common/src/http.ts. */
  ...httpTimeoutsSchema.shape,
});

export type CaConfig = z.output<typeof caConfigSchema>;

export const PASSPHRASE_ENV = 'PACKTRUST_CA_PASSPHRASE';

export function loadCaConfig(
  overrides: Record<string, unknown> = {},
  file = process.env.PACKTRUST_CA_CONFIG,
): CaConfig {
  return loadConfig(caConfigSchema, { file, envPrefix: 'PACKTRUST_CA_', overrides });
}
