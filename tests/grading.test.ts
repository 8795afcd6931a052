// The grader, graded: it must pass correct implementations written in another language (Python,
// standard library only, written from the stage READMEs), fail deliberately broken ones on the
// check each one breaks with a useful message, and never hang on a server that misbehaves.
// Every grading runs grading/grade.ts as a child process, exactly as an instructor would.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../conformance/harness/checks.ts';
import { runCommand, shellQuote, type CommandResult } from '../conformance/harness/run-command.ts';
import { stage } from '../conformance/stages.ts';
import type { CheckReport, GradeReport } from '../grading/report.ts';
import { parseCommandLine } from '../grading/options.ts';
import { planGrading } from '../grading/plan.ts';
import { slowConsumer } from '../conformance/hostile/slow-consumer-check.ts';

t.setTimeout(300_000); // many gradings, some waiting out a 10 s protocol timeout on purpose

const fixture = (path: string) => shellQuote(join(repoRoot, 'tests', 'fixtures', path));
const pythonServer = (path: string) => `python3 ${fixture(path)} --host 127.0.0.1 --port {port}`;
const pythonClient = (path: string) => `python3 ${fixture(path)}`;

const scratch = mkdtempSync(join(tmpdir(), 'grading-test-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

interface Grading {
  run: CommandResult;
  /** null when the grader wrote no JSON (usage errors). */
  report: GradeReport | null;
  seconds: number;
}

// A few gradings at a time: enough to overlap the protocol timeouts they wait out, few enough
// that a busy 2-core machine still meets the checks' own deadlines.
const MAX_AT_ONCE = 4;
let running = 0;
const queue: (() => void)[] = [];
async function inTurn<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_AT_ONCE) await new Promise<void>((resolve) => queue.push(resolve));
  running++;
  try {
    return await work();
  } finally {
    running--;
    queue.shift()?.();
  }
}

let jsonFiles = 0;
/** Runs the grader with `args` (plus --json) and returns what it printed, its exit code and its report. */
function grade(args: string[]): Promise<Grading> {
  const json = join(scratch, `report-${++jsonFiles}.json`);
  return inTurn(async () => {
    const started = Date.now();
    const run = await runCommand(`"${process.execPath}" --import tsx grading/grade.ts`, [...args, '--json', json], {
      cwd: repoRoot,
      env: { ...process.env, INIT_CWD: repoRoot, PYTHONDONTWRITEBYTECODE: '1' }, // no __pycache__ in the tree
      timeoutMs: 150_000,
    });
    let report: GradeReport | null = null;
    try {
      report = JSON.parse(readFileSync(json, 'utf8')) as GradeReport;
    } catch {
      // no report: asserted by the tests that expect one
    }
    return { run, report, seconds: (Date.now() - started) / 1000 };
  });
}

function failedNames(report: GradeReport | null): string[] {
  return (report?.checks ?? []).filter((check) => !check.passed).map((check) => check.name);
}

function checkNamed(report: GradeReport | null, start: string): CheckReport | undefined {
  return report?.checks.find((check) => check.name.startsWith(start));
}

/** The failure of the check whose name starts with `start`, as one searchable text. */
function failureText(report: GradeReport | null, start: string): string {
  const failure = checkNamed(report, start)?.failure;
  return failure ? Object.values(failure).join('\n') : '(no failure recorded)';
}

// stage() throws for a missing stage: a lost stage must fail this file, never skip its tests.
const stage01 = stage('01');
const stage02 = stage('02');
const namesOf = (checks: { name: string; subject?: string }[], subject: string) => checks.filter((check) => (check.subject ?? 'server') === subject).map((check) => check.name);

// Start every grading now; the tests below await them, so they overlap.
const gradings = {
  good01: grade(['--stage', '01', '--server', pythonServer('python/stage01_server.py'), '--client', pythonClient('python/stage01_client.py')]),
  clientOnly01: grade(['--stage', '01', '--client', pythonClient('python/stage01_client.py')]),
  noTimeout01: grade(['--stage', '01', '--server', pythonServer('broken/stage01_no_timeout_server.py')]),
  noComma01: grade(['--stage', '01', '--server', pythonServer('broken/stage01_no_comma_server.py')]),
  noCommaRepeated01: grade(['--stage', '01', '--server', pythonServer('broken/stage01_no_comma_server.py'), '--only', 'by name', '--repeat', '3']),
  noLimits01: grade(['--stage', '01', '--server', pythonServer('broken/stage01_no_limits_server.py')]),
  exitsAtOnce: grade(['--stage', '01', '--server', 'false']),
  neverReady: grade(['--stage', '01', '--check-setup', '--ready-timeout', '2', '--server', `python3 -c "import time; time.sleep(60)" never-ready-${process.pid}`]),
  neverAccepts: grade(['--stage', '01', '--check-setup', '--server', `python3 -c "import time; print('listening on 127.0.0.1:{port}', flush=True); time.sleep(60)"`]),
  hungCheck: grade(['--stage', '01', '--server', pythonServer('python/stage01_server.py'), '--only', 'sends nothing', '--check-timeout', '1']),
  // The Python 02 server gets its full grade (robustness, slow consumer) in tests/independent-servers-02.test.ts.
  goodClient02: grade(['--stage', '02', '--client', pythonClient('python/stage02_client.py')]),
  rawJson02: grade(['--stage', '02', '--no-robustness', '--server', pythonServer('broken/stage02_raw_json_server.py'), '--only', 'welcomes a user']),
  modifiedEcho02: grade(['--stage', '02', '--no-robustness', '--server', pythonServer('broken/stage02_modified_echo_server.py'), '--only', 'echoes']),
  forgetsReset02: grade(['--stage', '02', '--no-robustness', '--server', pythonServer('broken/stage02_forgets_reset_server.py'), '--only', 'frees the slot']),
  noTimeout02: grade(['--stage', '02', '--no-robustness', '--server', pythonServer('broken/stage02_no_timeout_server.py'), '--only', 'sends no HELLO']),
};

t.test('stage 01: Python server and client, written from the README, pass every check', async (t) => {
  const { run, report } = await gradings.good01;
  t.equal(run.exitCode, 0, `exit 0 when every check passes; output:\n${run.stdout}`);
  t.equal(report?.stage, '01');
  t.match(report?.server, /stage01_server\.py/, 'the report names the server graded');
  t.match(report?.client, /stage01_client\.py/, 'the report names the client graded');
  t.same(report?.checks.map((check) => check.name), stage01.checks.map((check) => check.name), 'every check of the stage ran, in order');
  t.same(failedNames(report), [], 'none failed');
  t.equal(report?.passed, stage01.checks.length);
  t.equal(report?.total, stage01.checks.length);
  t.match(run.stdout, new RegExp(`^score: ${stage01.checks.length}/${stage01.checks.length} checks passed$`, 'm'));
  t.match(run.stdout, /^PASS {2}answers a greeting by name$/m, 'one PASS line per check');
  t.ok(Date.parse(report!.finished) >= Date.parse(report!.started), 'started and finished are ISO times, in order');
});

t.test('stage 01: grading only a client runs only the client checks, against the reference server', async (t) => {
  const { run, report } = await gradings.clientOnly01;
  t.equal(run.exitCode, 0, run.stdout);
  t.same(report?.checks.map((check) => check.name), namesOf(stage01.checks, 'client'));
  t.ok(report!.checks.length >= 1 && report!.checks.every((check) => check.subject === 'client' && check.passed));
  t.equal(report?.server, null, 'no server was graded (the reference served the client checks)');
});

t.test('stage 01: a server that never times out a silent connection fails exactly that check', async (t) => {
  const { run, report } = await gradings.noTimeout01;
  t.equal(run.exitCode, 1);
  t.same(failedNames(report), ['drops a client that sends nothing, after about 10 s (ERR timeout)']);
  t.match(failureText(report, 'drops a client'), /the greeting timeout is not 10 s: no ERR timeout within 15\.1 s/);
  t.same(report?.checks.map((check) => check.name), namesOf(stage01.checks, 'server'), 'grading a server runs only the server checks');
  t.match(run.stdout, /^FAIL {2}drops a client that sends nothing/m);
  t.match(run.stdout, new RegExp(`^score: ${report!.total - 1}/${report!.total} checks passed$`, 'm'));
});

t.test('stage 01: a server that answers without the comma fails the greeting checks, showing the bytes', async (t) => {
  const { run, report } = await gradings.noComma01;
  t.equal(run.exitCode, 1);
  const failure = checkNamed(report, 'answers a greeting by name')?.failure;
  t.equal(failure?.summary, 'wrong answer to a greeting');
  t.equal(failure?.expected, '"OK Hello, Ada!\\n"');
  t.equal(failure?.actual, '"OK Hello Ada!"');
  t.match(failure?.sent_hex, /^48 45 4c 4c 4f 20 41 64 61 0a {2}\|HELLO Ada\.\|/, 'what was sent, in hex and text');
  t.match(failure?.received_hex, /^4f 4b 20 48 65 6c 6c 6f 20 41 64 61 21 0a/, 'what came back, in hex');
  t.ok(failure?.hint, 'with a hint');
  t.ok(checkNamed(report, 'refuses an empty name')?.passed, 'the refusals, which never say "Hello", still pass');
  // The text report shows the same, indented under the FAIL line.
  t.match(run.stdout, /FAIL {2}answers a greeting by name\n {6}wrong answer to a greeting\n {6}expected: "OK Hello, Ada!\\n"/);
});

t.test('stage 01: a server that ignores the limits fails the limit checks and nothing else', async (t) => {
  const { report } = await gradings.noLimits01;
  t.same(failedNames(report), ['refuses a name of 33 characters (ERR bad_name)', 'refuses a greeting past 256 bytes as soon as byte 257 arrives (ERR too_long); a line of 256 is read whole']);
  t.match(failureText(report, 'refuses a name of 33'), /expected error code bad_name[\s\S]*OK Hello, x{33}!/);
  t.match(failureText(report, 'refuses a greeting past 256 bytes'), /ERR too_long/);
});

t.test('a server command that exits at once fails every check with that reason, quickly', async (t) => {
  const { run, report, seconds } = await gradings.exitsAtOnce;
  t.equal(run.exitCode, 1);
  t.equal(report?.passed, 0);
  t.match(report?.checks[0]?.failure?.summary, /server did not start: the server exited \(code 1\) before printing "listening on HOST:PORT"/);
  t.match(report?.checks[1]?.failure?.summary, /^not run: server did not start/, 'later checks do not start it again and again');
  t.ok(seconds < 30, `bounded time (took ${seconds} s)`);
});

t.test('a server that never prints the ready line fails the setup check, and is stopped', async (t) => {
  const { run, report, seconds } = await gradings.neverReady;
  t.equal(run.exitCode, 1);
  t.equal(report?.total, 1, '--check-setup runs the setup check only');
  t.match(report?.checks[0]?.failure?.summary, 'no "listening on HOST:PORT" line within 2 s');
  t.match(report?.checks[0]?.failure?.hint, /flush/);
  t.ok(seconds < 30, `bounded time (took ${seconds} s)`);
  const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  t.notMatch(processes, `never-ready-${process.pid}`, 'the server process group was stopped');
});

t.test('a server that prints the ready line but never listens fails with "connection refused"', async (t) => {
  const { run, report, seconds } = await gradings.neverAccepts;
  t.equal(run.exitCode, 1);
  t.match(report?.checks[0]?.failure?.summary, /^could not connect to 127\.0\.0\.1:\d+: ECONNREFUSED/);
  t.match(report?.checks[0]?.failure?.hint, 'is the server listening on the port it was given');
  t.match(run.stdout, /^FAIL {2}setup: /m);
  t.ok(seconds < 30, `bounded time (took ${seconds} s)`);
});

t.test('a check that runs past the check timeout fails, naming the check', async (t) => {
  const { run, report, seconds } = await gradings.hungCheck;
  t.equal(run.exitCode, 1);
  t.match(report?.checks[0]?.failure?.summary, 'the check "drops a client that sends nothing, after about 10 s (ERR timeout)" did not finish within 1 s');
  t.ok(seconds < 9, `the grader moved on without waiting for the check (took ${seconds} s)`);
});

t.test('bad usage exits 2 with the usage text', async (t) => {
  for (const args of [[], ['--stage', '99'], ['--stage', '01', '--frobnicate'], ['--stage', '01', '--ready-timeout', 'soon']]) {
    const { run, report } = await grade(args);
    t.equal(run.exitCode, 2, `exit 2 for: ${args.join(' ')}`);
    t.match(run.stderr, /^error: .+\n[\s\S]*usage: npm run grade/m);
    t.equal(report, null, 'and no report');
  }
});

t.test('robustness is graded by default from stage 02 on; --no-robustness skips it; --slow-consumer adds the slow consumer', async (t) => {
  const plan = (...args: string[]) => {
    const parsed = parseCommandLine(args, {});
    if (!('options' in parsed)) throw new Error(`not a plan: ${JSON.stringify(parsed)}`);
    return planGrading(parsed.options);
  };
  const hostileNames = (...args: string[]) => plan(...args).robustnessChecks.map((check) => check.name);
  t.equal(hostileNames('--stage', '01').length, 0, 'stage 01 has no framed wire to attack');
  t.ok(hostileNames('--stage', '03').length >= 7, 'stage 03: the hostile checks run without being asked for');
  const slowConsumer03 = slowConsumer(stage('03').wire!).name;
  t.notOk(hostileNames('--stage', '03').includes(slowConsumer03), 'the minute-long slow consumer only when asked');
  t.ok(hostileNames('--stage', '03', '--slow-consumer').includes(slowConsumer03), '--slow-consumer adds it');
  t.same(hostileNames('--stage', '03', '--no-robustness'), [], '--no-robustness: none');
  t.same(hostileNames('--stage', '04', '--only', 'tick:'), [], '--only selects among them too');
  t.match(parseCommandLine(['--stage', '03', '--no-robustness', '--slow-consumer'], {}), { usageError: /contradicts/ });
  t.match(parseCommandLine(['--stage', '01', '--slow-consumer'], {}), { usageError: /no framed wire/ });
});

t.test('--list prints every check a grade can run, the robustness section and the slow consumer too', async (t) => {
  const parsed = parseCommandLine(['--stage', '03', '--slow-consumer'], {});
  if (!('options' in parsed)) throw new Error(`not a plan: ${JSON.stringify(parsed)}`);
  const { checks, robustnessChecks } = planGrading(parsed.options);
  const { run } = await grade(['--stage', '03', '--list']);
  t.equal(run.exitCode, 0, 'exit 0');
  const lines = run.stdout.split('\n');
  for (const check of checks) t.ok(lines.includes(`- [${check.subject ?? 'server'}] ${check.name}`), `listed: ${check.name.slice(0, 60)}`);
  for (const check of robustnessChecks) {
    const mark = check.name === slowConsumer(stage('03').wire!).name ? 'server, robustness, --slow-consumer' : 'server, robustness';
    t.ok(lines.includes(`- [${mark}] ${check.name}`), `listed as [${mark}]: ${check.name.slice(0, 60)}`);
  }
  t.equal(lines.filter((line) => line.startsWith('- ')).length, checks.length + robustnessChecks.length, 'and nothing else');
  const { run: run01 } = await grade(['--stage', '01', '--list']);
  t.notMatch(run01.stdout, /robustness/, 'stage 01 has no robustness section');
});

t.test('--slow adds a stage\'s checks that wait on purpose (07: sender_stalled) to its checks; without it they are left out', async (t) => {
  const names = (...args: string[]) => {
    const parsed = parseCommandLine(args, {});
    if (!('options' in parsed)) throw new Error(`not a plan: ${JSON.stringify(parsed)}`);
    return planGrading(parsed.options).checks.map((check) => check.name);
  };
  t.notOk(names('--stage', '07').some((name) => name.startsWith('sender stalled')), 'not in the default grade');
  t.ok(names('--stage', '07', '--slow').some((name) => name.startsWith('sender stalled')), '--slow adds it');
  t.same(names('--stage', '07', '--slow', '--only', 'sender stalled').length, 1, '--only selects among them too');
  const either = names('--stage', '07', '--slow', '--only', 'sender stalled', '--only', 'transfer ids wrap');
  t.same(either.map((name) => name.split(' ')[0]), ['sender', 'transfer'], '--only given twice: the checks that contain either text');
  for (const [stage, check] of [['05', 'session ids wrap'], ['06', 'session ids wrap'], ['07', 'session ids wrap'], ['08', 'session ids wrap'], ['07', 'transfer ids wrap'], ['08', 'transfer ids wrap'], ['08', 'call ids wrap']]) {
    t.notOk(names('--stage', stage!).some((name) => name.startsWith(check!)), `${check}: not in the default grade (65 535 ids burnt through)`);
    t.same(names('--stage', stage!, '--slow', '--only', check!).length, 1, `${check}: --slow adds it`);
  }
  t.match(parseCommandLine(['--stage', '03', '--slow'], {}), { usageError: /stage 03 has no slow checks/ });
});

t.test('--repeat N runs each selected check N times and tallies the runs per check (a flakiness count)', async (t) => {
  const { run, report } = await gradings.noCommaRepeated01;
  t.equal(run.exitCode, 1, `exit 1 when a run fails; output:\n${run.stdout}`);
  t.equal(report?.repeat, 3, 'the report says how many runs each check had');
  t.same(report?.checks.map((check) => check.name), Array(3).fill('answers a greeting by name'), 'every run is in the report, in order');
  t.equal(run.stdout.match(/^run [123] of 3: FAIL {2}answers a greeting by name$/gm)?.length, 3, 'each failed run is shown with its number');
  t.match(run.stdout, /^0 PASS, 3 FAIL, 0 SKIP of 3 {2}answers a greeting by name$/m, 'the tally counts them');
  t.match(run.stdout, /^score: 0\/3 runs \(each check ran 3 times\) passed$/m);
  for (const bad of ['0', '-1', '2.5', 'many', '1001']) {
    t.match(parseCommandLine(['--stage', '01', `--repeat=${bad}`], {}), { usageError: /--repeat takes a whole number from 1 to 1000/ }, `--repeat ${bad} is a usage error`);
  }
});

t.test('stage 02', async (t) => {
  const all = stage02.checks;

  t.test('the Python client, written from the protocol, passes every client check (its server: tests/independent-servers-02.test.ts)', async (t) => {
    const { run, report } = await gradings.goodClient02;
    t.equal(run.exitCode, 0, `exit 0 when every check passes; output:\n${run.stdout}`);
    t.match(report?.client, /stage02_client\.py/, 'the report names the client graded');
    t.equal(report?.server, null, 'no server was graded: the reference served the client checks');
    t.same(report?.checks.map((check) => check.name), namesOf(all, 'client'), 'every client check of the stage ran, in order, and nothing else');
    t.same(failedNames(report), []);
  });

  t.test('a server that writes raw JSON (no frame header) fails "welcomes a user", showing the JSON', async (t) => {
    const { run, report } = await gradings.rawJson02;
    t.equal(run.exitCode, 1);
    t.match(failureText(report, 'welcomes a user'), /a frame header declares \d+ payload bytes[\s\S]*header type 0x7b/);
    t.match(checkNamed(report, 'welcomes a user')?.failure?.received_hex, /^7b 22 6e 61 6d 65 22/, 'the bytes that came back: {"name"');
  });

  t.test('a server that changes a byte of the echo fails the echo check, naming the byte', async (t) => {
    const { report } = await gradings.modifiedEcho02;
    t.match(failureText(report, 'echoes 10 distinct audio frames'), /echo of audio frame 1 of 10 is wrong[\s\S]*byte 100: expected 0x[0-9a-f]{2}, got 0x/);
  });

  t.test('a server that keeps the slot after a reset fails the reset check, and only that one', async (t) => {
    const { report } = await gradings.forgetsReset02;
    t.same(failedNames(report), ['frees the slot at once after an abrupt disconnect (reset)']);
    t.match(failureText(report, 'frees the slot at once after an abrupt'), /could not join within \d+ ms: still busy/);
    t.ok(report!.checks.length >= 3, 'BYE and FIN (which it handles) were checked too, and passed');
  });

  t.test('a server that never times out a silent connection fails the handshake timeout check', async (t) => {
    const { report } = await gradings.noTimeout02;
    t.same(failedNames(report), [all.find((check) => check.name.includes('sends no HELLO'))!.name]);
    t.match(failureText(report, 'drops a connection that sends no HELLO'), /the handshake timeout is not 5 s: no ERROR handshake_timeout within 7\.6 s/);
  });
  t.end();
});
