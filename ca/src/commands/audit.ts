import { type Command, InvalidArgumentError } from 'commander';
import type { CommandContext } from './context.ts';

/** `audit verify` and `audit list`: the CA's hash-chained audit log. */
export function addAuditCommands(program: Command, cli: CommandContext): void {
  const audit = program.command('audit').description('the hash-chained audit log');
  audit
    .command('verify')
    .description('recompute the chain and report the first broken entry')
    .option('--from <seq>', 'start at this entry', (v) => positiveInt(v), 1)
    .action(async (o) =>
      cli.withRecords((_, auditLog) => {
        const result = auditLog.verify(o.from);
        if (result.ok) {
          console.log(`audit log intact: ${result.checked} entries checked, last ${result.lastSeq}`);
          return;
        }
        console.error(`audit log BROKEN at entry ${result.firstBroken.seq}: ${result.firstBroken.reason}`);
        process.exitCode = 3;
      }),
    );
  audit
    .command('list')
    .description('print entries')
    .option('--from <seq>', 'first entry', (v) => positiveInt(v), 1)
    .option('--limit <n>', 'at most this many', (v) => positiveInt(v), 100)
    .action(async (o) =>
      cli.withRecords((_, auditLog) => {
        let n = 0;
        for (const e of auditLog.entries(o.from)) {
          const b = e.body;
          console.log(
            `${e.seq}\t${b.time}\t${b.actor}\t${b.action}\t${b.serial ?? '-'}\t${b.outcome}${b.code ? ` ${b.code}` : ''}`,
          );
          if (++n >= o.limit) break;
        }
      }),
    );
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}
