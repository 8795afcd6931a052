// The fuzzer: thousands of random and mutated streams (conformance/hostile/fuzz-case.ts) against a server
// of stage 02 to 06, each judged against the README model (conformance/hostile/spec-model.ts); after
// every round a new user must still be able to join, and see nobody who has left. Stage 06 then plays
// as many datagram cases (conformance/hostile/datagram-fuzz.ts), one every 25 ms, with the same seeds.
//
//   npm run fuzz -- --cases 10000 --seed 1 --stage 03
//   SERVER_CMD="python3 my_server.py --port {port}" npm run fuzz -- --stage 02
//
// Case i uses seed S+i: a failing case prints its seed, and `--seed THAT --cases 1` plays it again.
// Exit code 0 when every case passed, 1 otherwise.
import { parseArgs } from 'node:util';
import { dashDashHint, swallowedOptions } from '../shared/npm-swallowed.ts';
import { repoRoot, serverCommand, withServerOptions } from '../conformance/harness/checks.ts';
import { startServerProcess, type ServerUnderTest } from '../conformance/harness/server-process.ts';
import { FUZZ_ROOM, fuzzCase } from '../conformance/hostile/fuzz-case.ts';
import { probeServer } from '../conformance/hostile/probe-user.ts';
import { runFuzzCase } from '../conformance/hostile/run-fuzz-case.ts';
import { fuzzDatagrams } from '../conformance/hostile/datagram-fuzz.ts';
import { wireStages, type WireStage } from '../conformance/stages.ts';

/** Cases played between two probes: the probe needs a quiet server to count users. */
const ROUND = 200;
const PROGRESS_EVERY_MS = 5_000;

const OPTIONS = {
  cases: { type: 'string', default: '1000' },
  seed: { type: 'string' },
  stage: { type: 'string' },
  parallel: { type: 'string', default: '16' },
  help: { type: 'boolean', default: false },
} as const;

// `npm run fuzz --cases 10` (no "--"): npm takes --cases for itself; say where the "--" goes.
const argv = process.argv.slice(2);
const swallowed = swallowedOptions(Object.keys(OPTIONS), argv);
if (swallowed.length > 0) {
  console.error(`error: ${dashDashHint({ swallowed, argv, positionals: 0, flags: ['help'] })}`);
  process.exit(2);
}

const { values } = parseArgs({ options: OPTIONS });

if (values.help) {
  console.log(`usage: npm run fuzz -- [--cases N] [--seed S] [--stage ${wireStages.map((entry) => entry.id).join('|')}] [--parallel P]`);
  console.log('  plays N cases (seeds S..S+N-1) against each stage (or just --stage), P connections at a time;');
  console.log('  SERVER_CMD (with {port}) replaces the reference server. Exit code 1 if any case failed.');
  process.exit(0);
}

const cases = Number(values.cases);
const parallel = Number(values.parallel);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!(Number.isSafeInteger(cases) && cases > 0) || !Number.isSafeInteger(seed) || !(Number.isSafeInteger(parallel) && parallel > 0)) {
  console.error('error: --cases and --parallel must be positive integers, --seed an integer');
  process.exit(2);
}
const stages = values.stage === undefined ? wireStages : wireStages.filter((entry) => entry.id === values.stage!.padStart(2, '0'));
if (stages.length === 0) {
  console.error(`error: --stage must be one of ${wireStages.map((entry) => entry.id).join(', ')}, not ${values.stage}`);
  process.exit(2);
}

let failures = 0;
for (const stage of stages) failures += await fuzzStage(stage);
process.exit(failures === 0 ? 0 : 1);

/** Plays every case against one server of `stage`; returns the number of failures. */
async function fuzzStage({ id: stage, folder, wire, serverOptions }: WireStage): Promise<number> {
  const command = withServerOptions(serverCommand(folder), serverOptions);
  console.log(`stage ${stage}: ${cases} cases, seeds ${seed}..${seed + cases - 1}, ${parallel} at a time, server: ${command}`);
  let server: ServerUnderTest;
  try {
    server = await startServerProcess(command, { cwd: repoRoot });
  } catch (error) {
    console.error(`stage ${stage}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  const started = performance.now();
  let lastProgress = started;
  let played = 0;
  let failed = 0;
  const kinds = { random: 0, mutated: 0 };
  const reproduce = (caseSeed: number) => `npm run fuzz -- --stage ${stage} --seed ${caseSeed} --cases 1`;

  try {
    for (let first = 0; first < cases && server.isRunning(); first += ROUND) {
      const last = Math.min(cases, first + ROUND);
      let next = first;
      const worker = async () => {
        while (next < last && server.isRunning()) {
          const caseSeed = seed + next++;
          const fuzz = fuzzCase(wire, caseSeed);
          kinds[fuzz.kind]++;
          const verdict = await runFuzzCase(server.host, server.port, wire, fuzz);
          played++;
          if (verdict.problem !== null) {
            failed++;
            console.log(`FAIL stage ${stage} seed ${caseSeed} (${fuzz.kind}: ${fuzz.recipe}; ends with ${fuzz.ending})`);
            console.log(`  ${verdict.problem}`);
            console.log(`  server sent: ${verdict.transcript}`);
            console.log(`  reproduce: ${reproduce(caseSeed)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: parallel }, worker));
      if (!server.isRunning()) break;
      // After each round: a newcomer joins and, in 03/04, is the only one listed in its room.
      const probe = await probeServer(server.host, server.port, wire, `probe${first}`, FUZZ_ROOM, []);
      if (probe.problem !== null) {
        failed++;
        console.log(`FAIL stage ${stage} after seeds ${seed + first}..${seed + last - 1}: ${probe.problem}`);
        console.log(`  reproduce: npm run fuzz -- --stage ${stage} --seed ${seed + first} --cases ${last - first}`);
      }
      if (performance.now() - lastProgress >= PROGRESS_EVERY_MS || last === cases) {
        lastProgress = performance.now();
        const seconds = ((lastProgress - started) / 1000).toFixed(0);
        console.log(`stage ${stage}: ${played}/${cases} cases, ${failed} failed, ${seconds} s`);
      }
    }
    if (wire.datagrams && server.isRunning()) {
      console.log(`stage ${stage}: ${cases} datagram cases, one every 25 ms (${Math.ceil(cases / 40)} s)`);
      failed += await fuzzDatagrams(server, wire, seed, cases, stage);
    }
    if (!server.isRunning()) {
      failed++;
      console.log(`FAIL stage ${stage}: the server stopped running after ${played} cases; it printed: ${JSON.stringify(server.output().slice(-600))}`);
    }
  } finally {
    await server.stop();
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`stage ${stage}: ${failed === 0 ? 'PASS' : 'FAIL'}: ${played} cases (${kinds.random} random, ${kinds.mutated} mutated), ${failed} failed, ${seconds} s, seeds ${seed}..${seed + cases - 1}`);
  return failed;
}
