/**
 * The local stack as `npm start` runs it and `npm run demo` finds it: ports, the data directory
 * and where each service keeps its state. One description, read by both.
 */
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { loadConfig } from '../common/src/config.ts';

const port = z.coerce.number().int().min(1).max(65535);
const stackSchema = z.object({
  dataDir: z.string().default('./data'),
  host: z.string().default('127.0.0.1'),
  caPublicPort: port.default(7080),
  caAdminPort: port.default(7443),
  gatewayPort: port.default(8443),
  /** Verifier nodes listen from here: DE node 1, DE node 2, FR node 1. */
  verifierBasePort: port.default(9443),
  /**
   * A service that crashes after it was ready is started again after this delay (ms), which
   * doubles with each further crash of that service within `restartWindowSeconds`.
   */
  restartDelayMs: z.coerce.number().int().min(0).max(60_000).default(1000),
  /** The longest delay before a restart (ms). */
  restartMaxDelayMs: z.coerce.number().int().min(0).max(600_000).default(30_000),
  /**
   * This many crashes of one service within `restartWindowSeconds` stop the stack (exit 1): a
   * service that keeps crashing needs a person, not more restarts. 1 stops at the first crash.
   */
  restartLimit: z.coerce.number().int().min(1).max(1000).default(5),
  restartWindowSeconds: z.coerce.number().int().min(1).max(86_400).default(120),
});
export type StackConfig = z.output<typeof stackSchema>;

/** The verifier nodes of the local stack: two for the first market, one for the second. */
export const NODES = [
  { nodeId: 'de-1', market: 'DE' },
  { nodeId: 'de-2', market: 'DE' },
  { nodeId: 'fr-1', market: 'FR' },
] as const;

export interface Stack {
  config: StackConfig;
  dataDir: string;
  caDir: string;
  gatewayDir: string;
  verifierDir: string;
  /** The CA chain (issuing then root), the trust anchor of every TLS connection in the stack. */
  chainFile: string;
  /** The first operator's credentials, made when the PKI was created. */
  operatorCertFile: string;
  operatorKeyFile: string;
  urls: {
    caPublic: string;
    caAdmin: string;
    gateway: string;
    oauthIssuer: string;
    nodes: { nodeId: string; market: string; url: string }[];
  };
}

/** Reads PACKTRUST_* (data dir, host, ports) with the project's one config loader. */
export function loadStack(): Stack {
  const config = loadConfig(stackSchema, { envPrefix: 'PACKTRUST_' });
  const dataDir = resolve(config.dataDir);
  const caDir = join(dataDir, 'ca');
  const gateway = `https://${config.host}:${config.gatewayPort}`;
  return {
    config,
    dataDir,
    caDir,
    gatewayDir: join(dataDir, 'gateway'),
    verifierDir: join(dataDir, 'verifier'),
    chainFile: join(caDir, 'chain.pem'),
    operatorCertFile: join(caDir, 'operator', 'operator.pem'),
    operatorKeyFile: join(caDir, 'operator', 'operator.key.pem'),
    urls: {
      caPublic: `http://${config.host}:${config.caPublicPort}`,
      caAdmin: `https://${config.host}:${config.caAdminPort}`,
      gateway,
      oauthIssuer: `${gateway}/oauth`,
      nodes: NODES.map((n, i) => ({ ...n, url: `https://${config.host}:${config.verifierBasePort + i}` })),
    },
  };
}
