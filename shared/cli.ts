// The command line every stage shares:
//   npm run stage:NN -- server [--host ADDR] [--port N]
//   npm run stage:NN -- client --name NAME [--host H] [--port N] ...
//   npm run stage:NN                      (no sub-command: a local demo)
//   npx voice-chat NN server ...          (the same, with no "--" to forget: bin/voice-chat.js)
// Each stage's main.ts adds its own options on top of these builders.
import yargs, { type Argv, type MiddlewareFunction } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { dashDashHint, swallowedOptions } from './npm-swallowed.ts';

export const DEFAULT_PORT = 8888;
/**
 * The server listens on every address of both families ("::" with dual-stack), so a friend on
 * another laptop can connect, and so can `--host ::1` or `--host localhost` where that means ::1.
 */
export const DEFAULT_SERVER_HOST = '::';
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
  if (env.PORT === undefined || env.PORT === '') return DEFAULT_PORT;
  try {
    return parsePort(env.PORT);
  } catch {
    throw new Error(`invalid PORT "${env.PORT}" in the environment: use a whole number from 0 to 65535, or give --port`);
  }
}

/**
 * The --port option's default, shown as is in --help. It stands for "PORT from the environment,
 * else 8888", and is read only when no --port is given: an explicit --port wins over a bad PORT.
 */
const PORT_FROM_ENVIRONMENT = `$PORT or ${DEFAULT_PORT}`;
const portOrDefault = (value: unknown) => (value === PORT_FROM_ENVIRONMENT ? defaultPort() : parsePort(value));

/** Parses --duration: seconds above 0; the error shows the text given (yargs' number type would show NaN). */
export function parseDuration(value: unknown): number {
  const text = String(value).trim();
  const seconds = Number(text);
  if (text === '' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new Error(`invalid --duration "${String(value)}": give a number of seconds above 0, e.g. --duration 5`);
  }
  return seconds;
}

/** Options of the `server` sub-command. */
export function serverOptions<T>(y: Argv<T>) {
  return y
    .option('host', {
      type: 'string',
      default: DEFAULT_SERVER_HOST,
      describe: 'address to listen on (::, the default: every IPv4 and IPv6 address; 0.0.0.0: every IPv4 one; 127.0.0.1: this machine only)',
    })
    .option('port', {
      type: 'string', // parsed by parsePort: yargs' own number type would turn "abc" into NaN
      default: PORT_FROM_ENVIRONMENT,
      coerce: portOrDefault,
      describe: 'TCP port to listen on; 0 lets the system choose',
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
      default: PORT_FROM_ENVIRONMENT,
      coerce: portOrDefault,
      describe: 'server TCP port',
    });
}

/** yargs passes middleware its parser too; @types/yargs 17 leaves that (and getOptions) out. */
interface YargsWithOptions {
  getOptions(): { key?: Record<string, unknown>; boolean: string[] };
}

/** Set by bin/voice-chat.js: how the user ran the stage ("npx voice-chat 04"), shown in usage lines. */
export const COMMAND_ENV = 'VOICE_CHAT_COMMAND';

/** `npx voice-chat NN` for `npm run stage:NN`: the form that needs no "--". */
function binForm(env: NodeJS.ProcessEnv): string | undefined {
  const stage = /^stage:(\d\d)$/.exec(env.npm_lifecycle_event ?? '')?.[1];
  return stage && `npx voice-chat ${stage}`;
}

/**
 * A yargs middleware (to run before validation, so a swallowed --name is reported as such, not
 * as "missing --name") that stops with one line when npm took some of our options for itself.
 * `positionals`: how many leading positional arguments the program takes (a sub-command: 1).
 */
export function stopIfNpmSwallowedOptions(argv: string[], positionals: number, alternative?: string): MiddlewareFunction {
  const middleware = (_args: unknown, y: YargsWithOptions) => {
    // `y` is the sub-command's parser: its options include the stage's own (--room, --input...).
    const options = y.getOptions();
    const swallowed = swallowedOptions(options.key ? Object.keys(options.key) : [], argv);
    if (swallowed.length === 0) return;
    console.error(`error: ${dashDashHint({ swallowed, argv, positionals, flags: options.boolean, alternative })}`);
    process.exit(2);
  };
  return middleware as unknown as MiddlewareFunction;
}

/**
 * The shared yargs setup: strict options, readable errors, help on every sub-command.
 * `script` is how the user runs the stage (shown in usage lines).
 */
export function stageCommandLine(script: string, description: string, argv: string[] = hideBin(process.argv)) {
  const shownScript = process.env[COMMAND_ENV] ?? script;
  return yargs(argv)
    .scriptName(shownScript)
    .usage(`${description}\n\nUsage: $0 <command> [options]`)
    // "--no-files" is an option of its own: yargs would otherwise read it as "files = false", and
    // strict() would then refuse the unknown "files".
    .parserConfiguration({ 'boolean-negation': false })
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(100, process.stdout.columns || 100))
    .middleware(stopIfNpmSwallowedOptions(argv, 1, binForm(process.env)), true)
    .fail((message, error) => {
      // Only parsing reaches here (command handlers report their own errors through runMain):
      // a bad option is a user mistake, so one line, a pointer to --help, exit code 2.
      console.error(`error: ${message ?? error?.message} (see ${shownScript} --help)`);
      process.exit(2);
    });
}
