// A lossy UDP path on the command line, between a client and a server (stage 06 on):
//   npx tsx tools/lossy-relay.ts --to 127.0.0.1:8888 --loss 5 --delay 20 --jitter 10 --dup 1 --reorder 2 --seed 7
// Point the client at the port it prints. Ctrl+C (or --duration) prints what it did to the datagrams.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startLossyRelay, type DirectionCounters, type LossyRelay } from '../shared/net/lossy-relay.ts';

const argv = await yargs(hideBin(process.argv))
  .usage('$0 --to HOST:PORT [--listen PORT] [--loss %] [--delay MS] [--jitter MS] [--dup %] [--reorder %] [--seed N]')
  .option('to', { type: 'string', demandOption: true, describe: 'the server: HOST:PORT' })
  .option('listen', { type: 'number', default: 0, describe: 'the port clients send to (0: the system chooses)' })
  .option('listen-host', { type: 'string', default: '127.0.0.1' })
  .option('loss', { type: 'number', default: 0, describe: 'drop this % of datagrams' })
  .option('delay', { type: 'number', default: 0, describe: 'delay every datagram this many ms' })
  .option('jitter', { type: 'number', default: 0, describe: 'plus 0..this many ms at random (keeps order)' })
  .option('dup', { type: 'number', default: 0, describe: 'send this % of datagrams twice' })
  .option('reorder', { type: 'number', default: 0, describe: 'hold back this % of datagrams so later ones overtake them' })
  .option('reorder-delay', { type: 'number', default: 50, describe: 'how long a reordered datagram is held back (ms)' })
  .option('seed', { type: 'number', default: 1, describe: 'the same seed gives the same losses' })
  .option('duration', { type: 'number', describe: 'stop after this many seconds' })
  .strict()
  .parseAsync();

const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(argv.to);
if (!match) {
  console.error(`error: --to "${argv.to}" is not HOST:PORT (for example 127.0.0.1:8888)`);
  process.exit(2);
}
let relay: LossyRelay;
try {
  relay = await startLossyRelay({
    target: { host: match[1], port: Number(match[2]) },
    listenHost: argv['listen-host'],
    listenPort: argv.listen,
    lossPercent: argv.loss,
    delayMs: argv.delay,
    jitterMs: argv.jitter,
    duplicatePercent: argv.dup,
    reorderPercent: argv.reorder,
    reorderDelayMs: argv['reorder-delay'],
    seed: argv.seed,
  });
} catch (error) {
  console.error(`error: ${(error as Error).message}`);
  process.exit(2);
}
console.log(`lossy relay listening on ${relay.host}:${relay.port} -> ${argv.to} (loss ${argv.loss} %, delay ${argv.delay}+0..${argv.jitter} ms, dup ${argv.dup} %, reorder ${argv.reorder} %, seed ${argv.seed})`);

function line(name: string, c: DirectionCounters): string {
  return `${name}: received ${c.received}, dropped ${c.dropped}, duplicated ${c.duplicated}, reordered ${c.reordered}, delivered ${c.delivered}`;
}
async function stop(): Promise<void> {
  console.log(line('to server', relay.counters.toServer));
  console.log(line('to client', relay.counters.toClient));
  if (relay.counters.tooManyClients > 0) console.log(`dropped for too many clients: ${relay.counters.tooManyClients}`);
  await relay.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
if (argv.duration !== undefined) setTimeout(() => void stop(), argv.duration * 1000);
