// Forgetting npm's "--" (`npm run stage:01 client --name Ada`): npm takes the options for itself.
// Every program that parses options says so in one line, with the command as it should be;
// `npx voice-chat NN ...` (bin/voice-chat.js) needs no "--" at all.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dashDashHint, swallowedOptions } from '#shared/npm-swallowed.ts';
import { parseCommandLine } from '../grading/options.ts';
import { repoRoot } from '../conformance/harness/checks.ts';

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command in the repository to its end (npm's own "Unknown user config" noise removed from stderr). */
function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: repoRoot, env, timeout: 60_000 }, (error, stdout, stderr) => {
      const exitCode = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ exitCode, stdout, stderr: stderr.split('\n').filter((line) => !/^npm warn/.test(line)).join('\n') });
    });
  });
}

/** The environment of a program started by `npm run SCRIPT`, with npm's copies of `options`. */
const npmRunEnv = (script: string, options: Record<string, string>): NodeJS.ProcessEnv => ({
  npm_command: 'run',
  npm_lifecycle_event: script,
  ...Object.fromEntries(Object.entries(options).map(([name, value]) => [`npm_config_${name}`, value])),
});

t.test('npm run stage:01 client --name Ada (no "--"): one line with the "--" in place, exit 2', async (t) => {
  const result = await run('npm', ['run', 'stage:01', 'client', '--name', 'Ada']);
  t.equal(result.exitCode, 2, `exit code; stderr: ${result.stderr}`);
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('error:'));
  t.same(errors, ['error: npm swallowed --name=Ada: run  npm run stage:01 -- client --name=Ada, or  npx voice-chat 01 client --name=Ada']);
  t.notMatch(result.stderr, /Missing required argument/, 'not the misleading "missing --name"');
});

t.test('npm run stage:04 server --port=9000 --host=127.0.0.1: refused before listening anywhere', async (t) => {
  const result = await run('npm', ['run', 'stage:04', 'server', '--port=9000', '--host=127.0.0.1']);
  t.equal(result.exitCode, 2);
  t.match(result.stderr, /^error: npm swallowed .*: run {2}npm run stage:04 -- server (--host=127\.0\.0\.1 --port=9000|--port=9000 --host=127\.0\.0\.1)/m);
  t.notMatch(result.stdout, /listening on/);
});

t.test('npx voice-chat NN passes the arguments as typed, with no "--"', async (t) => {
  const demo = await run('npx', ['voice-chat', '01']);
  t.equal(demo.exitCode, 0, demo.stderr);
  t.match(demo.stdout, /the server answers: /, 'the stage 01 demo ran');

  // Port 1 is never a voice-chat server: the client got --port and --host, and refers to itself by the npx form.
  const client = await run('npx', ['voice-chat', '01', 'client', '--name', 'Ada', '--host', '127.0.0.1', '--port', '1']);
  t.equal(client.exitCode, 1);
  t.match(client.stderr, 'connection refused by 127.0.0.1:1');
  const help = await run('npx', ['voice-chat', '4', 'client', '--help']);
  t.match(help.stdout, /npx voice-chat 04 client/);
  t.match(help.stdout, /--room/);
  const unknown = await run('npx', ['voice-chat', '99']);
  t.equal(unknown.exitCode, 2);
  t.match(unknown.stderr, /no stage "99"/);
});

t.test('swallowedOptions: only our option names, only from npm run, not from an .npmrc or when also given', async (t) => {
  const names = ['port', 'host', 'gate-open-db'];
  t.same(swallowedOptions(names, ['server'], { npm_config_port: '9000' }), [], 'not started by npm run');
  t.same(swallowedOptions(names, ['server'], npmRunEnv('stage:04', { port: '9000', cache: '/root/.npm' })), [{ name: 'port', value: '9000' }]);
  t.same(swallowedOptions(names, ['server'], npmRunEnv('stage:04', { gate_open_db: '-30' })), [{ name: 'gate-open-db', value: '-30' }]);
  t.same(swallowedOptions(names, ['server', '--port', '9000'], npmRunEnv('stage:04', { port: '9000' })), [], 'given after "--" too');
  t.same(swallowedOptions(names, ['client', '9000'], npmRunEnv('stage:04', { port: 'true' })), [{ name: 'port', value: undefined }]);

  const home = mkdtempSync(join(tmpdir(), 'npmrc-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeFileSync(join(home, '.npmrc'), 'fund=false\nport = 7000\n');
  const env = { ...npmRunEnv('stage:04', { port: '7000', host: '::1' }), npm_config_userconfig: join(home, '.npmrc') };
  t.same(swallowedOptions(names, ['server'], env), [{ name: 'host', value: '::1' }], 'port set in the user .npmrc is not a swallowed option');
});

t.test('dashDashHint: a value npm left behind is paired when that is certain, else asked for', async (t) => {
  const env = npmRunEnv('stage:02', {});
  t.equal(
    dashDashHint({ swallowed: [{ name: 'port', value: undefined }], argv: ['client', '9000'], positionals: 1, flags: [], env }),
    'npm swallowed --port: run  npm run stage:02 -- client --port=9000',
  );
  t.equal(
    dashDashHint({ swallowed: [{ name: 'ptt', value: undefined }, { name: 'name', value: 'Zoë K' }], argv: ['client'], positionals: 1, flags: ['ptt'], env }),
    "npm swallowed --ptt --name=Zoë K: run  npm run stage:02 -- client --ptt --name='Zoë K'",
  );
  const two = dashDashHint({ swallowed: [{ name: 'port', value: undefined }, { name: 'duration', value: undefined }], argv: ['client', '9000', '3'], positionals: 1, flags: [], env, alternative: 'npx voice-chat 02' });
  t.equal(two, 'npm swallowed --port --duration: run  npm run stage:02 -- client --port=… --duration=… (fill in each value; npm left 9000 3), or  npx voice-chat 02 client --port=… --duration=…');
});

t.test('the grader: npm run grade --stage 02 says where the "--" goes', async (t) => {
  const parsed = parseCommandLine(['02'], npmRunEnv('grade', { stage: 'true' }));
  t.same(parsed, { dashDash: 'npm swallowed --stage: run  npm run grade -- --stage=02' });
  t.ok('options' in parseCommandLine(['--stage', '02'], npmRunEnv('grade', {})), 'with "--" all is well');
});
