import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { JWK } from 'jose';
import { runCli } from '../common/src/cli.ts';
import { BadRequest } from '../common/src/errors.ts';
import { generateClientKey, TokenClient, TokenEndpointUnreachable, TokenError } from './token-client.ts';

/** Node's codes for a server certificate that no trusted CA vouches for. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

/** `packtrust-token`: what a pharmacy system needs to authenticate to packtrust. */
export function createCli(): Command {
  const program = new Command('packtrust-token')
    .description('keys and access tokens for pharmacy software')
    .showHelpAfterError();
  program
    .command('keygen')
    .description('make a key pair: keep the private key, give the JWKS to onboarding staff')
    .requiredOption('--key-out <file>', 'private key (JWK), keep it secret')
    .requiredOption('--jwks-out <file>', 'public JWKS for onboarding')
    .action(async (o) => {
      const { privateJwk, jwks } = await generateClientKey();
      writeFileSync(o.keyOut, `${JSON.stringify(privateJwk, null, 2)}\n`, { mode: 0o600 });
      writeFileSync(o.jwksOut, `${JSON.stringify(jwks, null, 2)}\n`);
      console.log(
        `wrote ${o.keyOut} (secret) and ${o.jwksOut} (hand this to onboarding staff); key id ${privateJwk.kid}`,
      );
    });
  program
    .command('token')
    .description('get an access token (client credentials, private_key_jwt or a client secret)')
    .requiredOption('--issuer <url>', 'the hub OAuth issuer, e.g. https://hub.example:8443/oauth')
    .requiredOption('--client-id <id>')
    .option('--key <file>', 'private key JWK made by keygen')
    .option('--secret-file <file>', 'client secret instead of a key')
    .option('--resource <uri>', 'verifier API to ask for (default: your market)')
    .option('--ca <file>', 'trust anchors for the hub TLS certificate (PEM)')
    .action(async (o) => {
      const read = (f: string) => {
        try {
          return readFileSync(f, 'utf8');
        } catch {
          throw new BadRequest(`Cannot read ${f}`);
        }
      };
      const client = new TokenClient({
        issuer: o.issuer,
        clientId: o.clientId,
        ...(o.key ? { privateJwk: JSON.parse(read(o.key)) as JWK } : {}),
        ...(o.secretFile ? { clientSecret: read(o.secretFile).trim() } : {}),
        ...(o.resource ? { resource: o.resource } : {}),
        ...(o.ca ? { ca: read(o.ca) } : {}),
      });
      try {
        const token = await client.token();
        console.log(
          JSON.stringify(
            { access_token: token.accessToken, expires_at: new Date(token.expiresAt).toISOString() },
            null,
            2,
          ),
        );
      } catch (err) {
        if (err instanceof TokenError) throw new BadRequest(`token request refused (${err.status}): ${err.message}`);
        if (err instanceof TokenEndpointUnreachable) {
          const untrusted = !o.ca && err.code !== undefined && UNTRUSTED_CERTIFICATE.has(err.code);
          throw new BadRequest(
            untrusted ? `${err.message}; give the CA chain that issued the hub's certificate with --ca` : err.message,
          );
        }
        throw err;
      } finally {
        await client.close();
      }
    });
  return program;
}

export function main(argv = process.argv): Promise<void> {
  return runCli(createCli(), argv);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
