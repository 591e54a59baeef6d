import type { Command } from 'commander';
import { cliActor } from '../../../common/src/cli.ts';
import type { HubStore } from '../hub-store.ts';
import { PrefixRegistry } from '../prefixes.ts';
import { type CommandContext, positiveInt } from './context.ts';

/** `packtrust-gateway prefix`: the registry of GS1 company prefixes and its audit log (prefixes.ts). */
export function prefixCommands(program: Command, { withStore }: CommandContext): void {
  const prefix = program
    .command('prefix')
    .description('GS1 company prefixes: an organisation registers only product codes under its own');
  const prefixes = (store: HubStore) => new PrefixRegistry(store, cliActor());
  prefix
    .command('add')
    .description('register a GS1 company prefix (4-12 digits, after the indicator digit) for an organisation')
    .argument('<org>', 'organisation id, as in its certificate')
    .argument('<prefix>', 'the company prefix, or a national agency range for NTINs')
    .action((org: string, digits: string) =>
      withStore(async (store) => {
        const r = await prefixes(store).add(org, digits);
        console.log(JSON.stringify(r.prefix, null, 2));
        if (!r.added) console.error(`Prefix ${digits} was already registered for ${org}; nothing changed.`);
      }),
    );
  prefix
    .command('list')
    .description('list registered prefixes')
    .option('--org <id>', "only this organisation's")
    .action((o) => withStore((store) => console.log(JSON.stringify(prefixes(store).list(o.org), null, 2))));
  prefix
    .command('move')
    .description(
      'give a prefix to another organisation with every product under it; verifier nodes learn the new owner',
    )
    .argument('<prefix>')
    .requiredOption('--to <org>', 'the organisation that owns it from now on')
    .action((digits: string, o) =>
      withStore(async (store) => console.log(JSON.stringify(await prefixes(store).move(digits, o.to), null, 2))),
    );
  prefix
    .command('remove')
    .description('remove a prefix under which no product is registered')
    .argument('<prefix>')
    .action((digits: string) =>
      withStore(async (store) => {
        const removed = await prefixes(store).remove(digits);
        console.log(`removed prefix ${removed.prefix} of ${removed.org}`);
      }),
    );
  const prefixAudit = prefix.command('audit').description("the registry's hash-chained audit log");
  prefixAudit
    .command('verify')
    .description('recompute the chain and report the first broken entry')
    .action(() =>
      withStore((store) => {
        const result = store.prefixes.audit.verify();
        if (result.ok)
          console.log(`prefix audit log intact: ${result.checked} entries checked, last ${result.lastSeq}`);
        else {
          console.error(`prefix audit log BROKEN at entry ${result.firstBroken.seq}: ${result.firstBroken.reason}`);
          process.exitCode = 3;
        }
      }),
    );
  prefixAudit
    .command('list')
    .description('print entries: seq, time, actor, action, prefix, owner (from -> to for a move), products moved')
    .option('--from <seq>', 'first entry', positiveInt, 1)
    .option('--limit <n>', 'at most this many', positiveInt, 100)
    .action((o) =>
      withStore((store) => {
        let n = 0;
        for (const { seq, body: b } of store.prefixes.audit.entries(o.from)) {
          const owner = b.from ? `${b.from} -> ${b.org}` : b.org;
          const moved = b.products === undefined ? '' : `\t${b.products} products`;
          console.log(`${seq}\t${b.time}\t${b.actor}\t${b.action}\t${b.prefix}\t${owner}${moved}`);
          if (++n >= o.limit) break;
        }
      }),
    );
}
