// `npm run stage:04 server --port=9000` (the "--" forgotten) hands --port=9000 to npm, not to
// the program: the server starts on 8888 as if nothing had been said. npm 11 keeps what it
// took in the environment (npm_config_port=9000; "true" when the value was a separate word,
// which then reaches the program as a stray argument). So a program run by `npm run` that finds
// one of ITS OWN option names there knows the user typed it, and says where the "--" goes.
//
// npm also exports options set in .npmrc files and npm_config_* variables of the shell; an
// .npmrc that sets one of our names is read and ignored here. (npm rewrites its own process
// title without the options, so the command line as typed cannot be read back.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SwallowedOption {
  /** The option's name, without dashes: "port", "gate-open-db". */
  name: string;
  /** The value npm kept; undefined when npm kept only "true" (a flag, or a value given as a separate word). */
  value: string | undefined;
}

/** npm's environment name for an option: --gate-open-db -> npm_config_gate_open_db. */
const envName = (option: string) => `npm_config_${option.replaceAll('-', '_').toLowerCase()}`;

/** Option names set in the .npmrc files npm read (project, user, global): those did not come from the command line. */
function namesSetInNpmrc(env: NodeJS.ProcessEnv): Set<string> {
  const files = [env.npm_config_local_prefix && join(env.npm_config_local_prefix, '.npmrc'), env.npm_config_userconfig, env.npm_config_globalconfig];
  const names = new Set<string>();
  for (const file of files) {
    if (!file) continue;
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no such file: nothing set there
    }
    for (const line of text.split('\n')) {
      const match = /^\s*([\w-]+)\s*=/.exec(line);
      if (match) names.add(envName(match[1]!));
    }
  }
  return names;
}

/**
 * Our options that npm took off the command line of `npm run SCRIPT`. Empty when the program was
 * not started by `npm run`, or when the user typed the option after "--" as well.
 */
export function swallowedOptions(optionNames: Iterable<string>, argv: string[], env: NodeJS.ProcessEnv = process.env): SwallowedOption[] {
  if (!['run', 'run-script'].includes(env.npm_command ?? '') || !env.npm_lifecycle_event) return []; // npm 11 says run, older npm run-script
  const fromNpmrc = namesSetInNpmrc(env);
  const swallowed: SwallowedOption[] = [];
  for (const name of new Set(optionNames)) {
    const key = envName(name);
    const value = env[key];
    if (value === undefined || fromNpmrc.has(key)) continue;
    if (argv.some((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`))) continue; // given after "--" too
    swallowed.push({ name, value: value === 'true' ? undefined : value });
  }
  return swallowed;
}

// As typed, so the line can be pasted back: arguments with spaces or shell characters are quoted.
const shellQuote = (arg: string) => (/^[\w./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`);

export interface DashDashHintInput {
  swallowed: SwallowedOption[];
  /** The arguments the program did get. */
  argv: string[];
  /** How many leading positional arguments the program expects (a sub-command: 1); later ones are values npm left behind. */
  positionals: number;
  /** Options that take no value (flags): npm's "true" is all there is to them. */
  flags: Iterable<string>;
  /** Another way to run the same thing that needs no "--" (shown after the fix), e.g. "npx voice-chat 04". */
  alternative?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * One line: what npm swallowed, then the command with "--" in place, e.g.
 *   npm swallowed --port=9000: run  npm run stage:04 -- server --port=9000
 * A value given as a separate word (`--port 9000`) reached the program as a stray argument;
 * with one such option the pair is certain, with several the order is lost, so the line asks
 * for the values to be filled in and lists them.
 */
export function dashDashHint(input: DashDashHintInput): string {
  const env = input.env ?? process.env;
  const flags = new Set(input.flags);
  const positionals: string[] = [];
  const options: string[] = [];
  for (const arg of input.argv) (arg.startsWith('-') || options.length > 0 ? options : positionals).push(arg);
  const kept = positionals.slice(0, input.positionals);
  const strays = positionals.slice(input.positionals);
  const needValue = input.swallowed.filter((option) => option.value === undefined && !flags.has(option.name));
  const pairCertain = needValue.length === 1 && strays.length === 1;

  const typed = input.swallowed.map((option) => {
    if (option.value !== undefined) return `--${option.name}=${shellQuote(option.value)}`;
    if (flags.has(option.name)) return `--${option.name}`;
    return pairCertain ? `--${option.name}=${shellQuote(strays[0]!)}` : `--${option.name}=…`;
  });
  const command = ['npm', 'run', env.npm_lifecycle_event ?? 'SCRIPT', '--', ...kept.map(shellQuote), ...typed, ...options.map(shellQuote)].join(' ');
  const shown = input.swallowed.map((option) => (option.value === undefined ? `--${option.name}` : `--${option.name}=${option.value}`)).join(' ');
  const fill = needValue.length > 0 && !pairCertain ? ` (fill in each value${strays.length > 0 ? `; npm left ${strays.map(shellQuote).join(' ')}` : ''})` : '';
  const alternative = input.alternative ? `, or  ${[input.alternative, ...kept.map(shellQuote), ...typed, ...options.map(shellQuote)].join(' ')}` : '';
  return `npm swallowed ${shown}: run  ${command}${fill}${alternative}`;
}
