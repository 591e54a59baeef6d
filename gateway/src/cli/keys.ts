import type { Command } from 'commander';
import { OAUTH_PASSPHRASE_ENV, oauthPassphrase } from '../config.ts';
import type { HubStore } from '../hub-store.ts';
import { openSigningKeys } from '../oauth/signing-keys.ts';
import type { CommandContext } from './context.ts';

/** `packtrust-gateway keys`: the access-token signing keys (oauth/signing-keys.ts). */
export function keyCommands(program: Command, { storeConfig, withStore }: CommandContext): void {
  const keys = program.command('keys').description('the access-token signing keys');
  const signingKeys = (store: HubStore, file?: string) => {
    const c = storeConfig();
    return openSigningKeys(
      store,
      oauthPassphrase({ oauthPassphraseFile: file ?? c.oauthPassphraseFile }),
      c.tokenTtlSeconds,
      c.markets,
    );
  };
  keys
    .command('rotate')
    .description('make a new signing key; the old one stays published until its tokens expire')
    .option('--passphrase-file <file>', `the signing keys' passphrase (else ${OAUTH_PASSPHRASE_ENV})`)
    .action((o) =>
      withStore(async (store) =>
        console.log(`new signing key ${await (await signingKeys(store, o.passphraseFile)).rotate()}`),
      ),
    );
  keys
    .command('list')
    .description('list signing keys')
    .option('--passphrase-file <file>')
    .action((o) =>
      withStore(async (store) =>
        console.log(JSON.stringify((await signingKeys(store, o.passphraseFile)).list(), null, 2)),
      ),
    );
}
