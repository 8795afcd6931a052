// The command line every stage shares:
//   npm run stage:NN -- server [--host ADDR] [--port N]
//   npm run stage:NN -- client --name NAME [--host H] [--port N] ...
//   npm run stage:NN                      (no sub-command: a local demo)
// Each stage's main.ts adds its own options on top of these builders.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';

export const DEFAULT_PORT = 8888;
/** The server listens on every interface, so a friend on another laptop can connect. */
export const DEFAULT_SERVER_HOST = '0.0.0.0';
export const DEFAULT_CLIENT_HOST = 'localhost';

/** Parses a TCP port number; 0 means "let the system choose" (servers only). */
export function parsePort(value: unknown): number {
  const text = String(value).trim();
  const port = Number(text);
  if (text === '' || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`invalid port "${String(value)}": use a whole number from 0 to 65535`);
  }
  return port;
}

/** The default port: PORT from the environment if set, else 8888. */
export function defaultPort(env: NodeJS.ProcessEnv = process.env): number {
  return env.PORT === undefined || env.PORT === '' ? DEFAULT_PORT : parsePort(env.PORT);
}

/** Options of the `server` sub-command. */
export function serverOptions<T>(y: Argv<T>) {
  return y
    .option('host', {
      type: 'string',
      default: DEFAULT_SERVER_HOST,
      describe: 'address to listen on (0.0.0.0: every IPv4 interface; 127.0.0.1: this machine only)',
    })
    .option('port', {
      type: 'string', // parsed by parsePort: yargs' own number type would turn "abc" into NaN
      default: String(defaultPort()),
      coerce: parsePort,
      describe: `TCP port to listen on; 0 lets the system choose (default: $PORT, else ${DEFAULT_PORT})`,
    });
}

/** Options of the `client` sub-command that every stage has. */
export function clientOptions<T>(y: Argv<T>) {
  return y
    .option('name', {
      type: 'string',
      demandOption: 'give your user name with --name',
      describe: 'your user name (1-32 characters, Unicode welcome)',
    })
    .option('host', {
      type: 'string',
      default: DEFAULT_CLIENT_HOST,
      describe: 'server host name or IP address',
    })
    .option('port', {
      type: 'string',
      default: String(defaultPort()),
      coerce: parsePort,
      describe: `server TCP port (default: $PORT, else ${DEFAULT_PORT})`,
    });
}

/**
 * The shared yargs setup: strict options, readable errors, help on every sub-command.
 * `script` is how the user runs the stage (shown in usage lines).
 */
export function stageCommandLine(script: string, description: string, argv: string[] = hideBin(process.argv)) {
  return yargs(argv)
    .scriptName(script)
    .usage(`${description}\n\nUsage: $0 <command> [options]`)
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, error) => {
      // Only parsing reaches here (command handlers report their own errors through runMain):
      // a bad option is a user mistake, so one line, a pointer to --help, exit code 2.
      console.error(`error: ${message ?? error?.message} (see ${script} --help)`);
      process.exit(2);
    });
}
