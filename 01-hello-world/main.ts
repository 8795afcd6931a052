// npm run stage:01 -- server | client | (nothing: a local demo)
import { userInfo } from 'node:os';
import { clientOptions, serverOptions, stageCommandLine } from '#shared/cli.ts';
import { runMain } from '#shared/user-error.ts';
import { greet, runClient } from './client.ts';
import { startServer } from './server.ts';

/** With no sub-command: a server and two clients on this machine, narrated. */
async function runDemo(): Promise<void> {
  console.log('Stage 01 demo: a server and two clients on this machine.');
  const server = await startServer('127.0.0.1', 0);
  const { port } = server.address;
  for (const name of [userInfo().username || 'student', 'Zoë 🎧']) {
    console.log(`client "${name}" connects to 127.0.0.1:${port} and sends: HELLO ${name}`);
    console.log(`  the server answers: ${await greet({ name, host: '127.0.0.1', port })}`);
  }
  await server.close();
  console.log('\nTry it yourself in two terminals (npx voice-chat 01 is npm run stage:01 -- without the "--"):');
  console.log('  npx voice-chat 01 server');
  console.log('  npx voice-chat 01 client --name Ada');
}

await stageCommandLine('npm run stage:01 --', 'Stage 01: hello world over TCP.')
  .command(
    'server',
    'run the server: it answers every greeting by name',
    (y) => serverOptions(y),
    (args) => runMain(async () => void (await startServer(args.host, args.port))),
  )
  .command(
    'client',
    'greet the server with your name and print its answer',
    (y) => clientOptions(y),
    (args) => runMain(() => runClient({ name: args.name, host: args.host, port: args.port })),
  )
  .command('$0', 'run a local demo (a server and two clients)', (y) => y, () => runMain(runDemo))
  .parseAsync();
