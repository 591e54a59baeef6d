import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { ROLES } from '../../../common/src/pack-rules.ts';
import { ClientInvalid } from '../errors.ts';
import { ClientRegistry } from '../oauth/clients.ts';
import type { CommandContext } from './context.ts';

/** `packtrust-gateway client`: the OAuth clients of pharmacies, hospitals and wholesalers (oauth/clients.ts). */
export function clientCommands(program: Command, { withStore }: CommandContext): void {
  const client = program.command('client').description('OAuth clients of pharmacies, hospitals and wholesalers');
  client
    .command('add')
    .description('register a client; prints its client_id (and secret)')
    .requiredOption('--market <XX>', 'the market (one the hub serves) whose verifier API the client calls')
    .addOption(new Option('--role <role>', 'what the client is').choices(ROLES).makeOptionMandatory())
    .requiredOption('--location <id>', 'location id (the pharmacy, the hospital ward, the warehouse)')
    .requiredOption('--org <id>', 'organisation id')
    .option('--jwks <file>', 'the client public keys (private_key_jwt, recommended)')
    .option('--secret', 'use a client secret instead of keys')
    .addOption(
      new Option('--secret-method <method>', 'how the secret is sent').choices(['basic', 'post']).default('basic'),
    )
    .action((o) =>
      withStore(async (store) => {
        let jwks: { keys: Record<string, unknown>[] } | undefined;
        if (o.jwks) {
          try {
            jwks = JSON.parse(readFileSync(o.jwks, 'utf8'));
          } catch {
            throw new ClientInvalid(`${o.jwks} is not a readable JWKS (JSON)`);
          }
        }
        const r = await new ClientRegistry(store).add({
          market: o.market,
          role: o.role,
          location: o.location,
          org: o.org,
          jwks,
          secret: o.secret === true,
          secretMethod: o.secretMethod,
        });
        console.log(JSON.stringify(r, null, 2));
        if (r.clientSecret) console.error('The secret is shown once; hand it over securely.');
      }),
    );
  client
    .command('list')
    .description('list clients')
    .action(() => withStore((store) => console.log(JSON.stringify(new ClientRegistry(store).list(), null, 2))));
  client
    .command('disable')
    .description(
      'disable a client: it gets no new token from now on (tokens already issued expire within their lifetime)',
    )
    .requiredOption('--client-id <id>')
    .action((o) =>
      withStore(async (store) => {
        await new ClientRegistry(store).disable(o.clientId);
        console.log(`disabled ${o.clientId}`);
      }),
    );
  client
    .command('rotate-secret')
    .description('give a secret client a new secret; the old one stops working at once')
    .requiredOption('--client-id <id>')
    .action((o) =>
      withStore(async (store) =>
        console.log(JSON.stringify({ clientSecret: await new ClientRegistry(store).rotateSecret(o.clientId) })),
      ),
    );
}
