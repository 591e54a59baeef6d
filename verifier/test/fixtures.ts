import { join } from 'node:path';
import { createLogger } from '../../common/src/log.ts';
import type { Credential, TestHub } from '../../gateway/test/fixtures.ts';
import { type RunningVerifierNode, startVerifierNode, type VerifierNodeOptions } from '../src/service.ts';

const logger = createLogger('node-test', 'silent');

/**
 * A real verifier node of `market` on 127.0.0.1:0 following `hub`, with a verifier-node
 * certificate its CA issued, its data under `dir/<nodeId>`, and a short feed long-poll.
 */
export async function startTestNode(
  hub: TestHub,
  market: string,
  nodeId: string,
  dir: string,
  overrides: Partial<VerifierNodeOptions> = {},
  cred?: Credential,
): Promise<RunningVerifierNode> {
  cred ??= await nodeCredential(hub, market);
  return startVerifierNode({
    market,
    nodeId,
    hubUrl: hub.hubUrl,
    issuer: hub.oauth.issuer,
    audience: `urn:packtrust:verifier:${market}`,
    dataDir: join(dir, nodeId),
    host: '127.0.0.1',
    port: 0,
    certPem: cred.certPem,
    keyPem: cred.keyPem,
    caPem: hub.t.ca.chainPem(),
    feedWaitMs: 500,
    evidenceLogKey: hub.notary.verifierKey,
    logger,
    ...overrides,
  });
}

/** A verifier-node certificate of `market` for 127.0.0.1, issued by the hub's CA. */
export function nodeCredential(hub: TestHub, market: string): Promise<Credential> {
  return hub.credential('verifier-node', `NMVO-${market}`, undefined, {
    market,
    ip: ['127.0.0.1'],
    dns: ['localhost'],
  });
}
