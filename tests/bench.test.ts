// The benchmark (bench/) runs end to end and speaks JSON; its small helpers compute what they say.
// No timing assertions: this machine is shared, timing goals live in BENCHMARKS.md.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { percentile } from '../bench/latency-probe.ts';
import { planUsers } from '../bench/load-plan.ts';
import { median } from '../bench/median.ts';
import { allowedCpus, parseCpuList } from '../bench/pinning.ts';
import { niceTicks } from '../bench/svg-plot.ts';

/** Checked here independently of bench/pinning.ts: can taskset run at all? */
function hasTaskset(): boolean {
  return spawnSync('taskset', ['--version'], { encoding: 'utf8' }).status === 0;
}

t.test('a tiny run prints ONE JSON object on its last line, with the numbers people read', (t) => {
  const args = ['--import', 'tsx', 'bench/run.ts', '--clients', '6', '--room-size', '3', '--talking', '0.5', '--seconds', '2', '--warmup', '0.5', '--json'];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 90_000 });
  t.equal(run.status, 0, `bench exits 0; stderr: ${run.stderr.slice(-800)}`);
  const lines = run.stdout.trim().split('\n');
  let result: Record<string, unknown> = {};
  t.doesNotThrow(() => (result = JSON.parse(lines[lines.length - 1]!)), `last line is JSON: ${lines[lines.length - 1]}`);
  t.equal(result.clients, 6, 'clients as asked');
  t.equal(result.talkers, 3, 'half of 6 users talk');
  for (const field of ['ticks', 'late_ticks', 'tick_work_ms_mean', 'tick_work_ms_max', 'server_preemptions_per_s', 'cpu_us_per_client_frame', 'latency_ms_p50', 'latency_ms_p99', 'server_rss_mb', 'frames_dropped', 'bytes_in_per_s', 'bytes_out_per_s']) {
    t.type(result[field], 'number', `${field} is a number`);
  }
  t.type(result.frames_dropped_by_reason, 'object', 'drops are broken down by reason');
  // What the counted server saw inside, over the window (bench/server-diagnostics.ts).
  const diagnostics = result.diagnostics as Record<string, unknown>;
  for (const field of ['event_loop_utilization', 'event_loop_delay_ms_p99', 'tick_lateness_ms_p99', 'gc_pauses', 'gc_ms', 'run_queue_wait_ms', 'late_ticks_unexplained', 'heap_used_mb', 'array_buffers_mb']) {
    t.type(diagnostics?.[field], 'number', `diagnostics.${field} is a number`);
  }
  const utilization = diagnostics?.event_loop_utilization as number;
  t.ok(utilization > 0 && utilization <= 1, `the event loop was busy part of the time (${utilization})`);
  t.ok((result.server_rss_mb_idle as number) > 0, 'RSS before anyone connected was read');
  t.type(result.server_rss_kb_per_user_above_idle, 'number', 'memory per user above idle is reported');
  t.ok((result.latency_samples as number) > 0, 'the probe timed some impulses');
  // 3 talkers + the probe send about 50 frames/s each; the exact rate depends on the machine.
  t.ok((result.bytes_in_per_s as number) > 0 && (result.bytes_out_per_s as number) > 0, 'bytes flowed both ways');
  t.match(result.command, /npm run bench -- --clients 6/, 'the command is recorded');
  // Pinning is on by default where it can be done; either way the JSON says so, and why.
  const canPin = hasTaskset() && (allowedCpus() ?? []).length >= 2;
  t.equal(result.pinned, canPin, `pinned where taskset exists and 2+ CPUs are allowed (${result.pinning})`);
  if (canPin) {
    const [serverCpu, ...loadCpus] = allowedCpus()!;
    t.equal(result.server_cpus, String(serverCpu), 'the server\'s processes were allowed only the first CPU (read from /proc during the run)');
    t.notOk(String(result.load_cpus).split(/[,-]/).includes(String(serverCpu)), `the load generator was kept off the server's CPU (allowed: ${result.load_cpus}; others: ${loadCpus.join(',')})`);
  } else {
    t.match(result.pinning, /not pinned: /, 'says why it did not pin');
  }
  t.end();
});

t.test('--server measures any server command (here the I/O floor), with the counters it lacks as null', (t) => {
  const server = 'node --import tsx bench/io-floor-server.ts 127.0.0.1 {port}';
  const args = ['--import', 'tsx', 'bench/run.ts', '--server', server, '--clients', '4', '--room-size', '2', '--seconds', '1', '--warmup', '0.5', '--no-pin', '--json'];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 90_000 });
  t.equal(run.status, 0, `bench exits 0; stderr: ${run.stderr.slice(-800)}`);
  const lines = run.stdout.trim().split('\n');
  let result: Record<string, unknown> = {};
  t.doesNotThrow(() => (result = JSON.parse(lines[lines.length - 1]!)), `last line is JSON: ${lines[lines.length - 1]}`);
  t.equal(result.server_command, server, 'the command measured is the one given');
  t.match(result.command, /--server 'node --import tsx bench\/io-floor-server\.ts 127\.0\.0\.1 \{port\}'/, 'the recorded command can be pasted back into a shell');
  t.equal(result.ticks, null, 'a server without VOICE_STATS_FILE support has no tick counters');
  t.ok((result.server_cpu_pct as number) > 0, 'its CPU is still measured from /proc');
  t.ok((result.mixes_out_per_s as number) > 0, 'the load received its frames');
  t.equal(result.pinned, false, '--no-pin: not pinned');
  t.match(result.pinning, /not pinned \(--no-pin\)/, 'and the JSON says why');
  t.end();
});

t.test('--compare measures every server it can in one run, and names the ones it cannot with the reason', (t) => {
  const missing = '/nonexistent/murmur-harness';
  const args = ['--import', 'tsx', 'bench/run.ts', '--compare', '--clients', '4', '--room-size', '2', '--seconds', '1', '--warmup', '0.5', '--murmur-harness', missing, '--json'];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
  t.equal(run.status, 0, `bench exits 0; stderr: ${run.stderr.slice(-800)}`);
  const lines = run.stdout.trim().split('\n');
  let result: { rows: { server: string; absent: string | null; us_per_frame: number | null; vs_c_floor: number | null; vs_murmur: number | null }[] } = { rows: [] };
  t.doesNotThrow(() => (result = JSON.parse(lines[lines.length - 1]!)), `last line is JSON: ${lines[lines.length - 1]}`);
  const [stage, nodeFloor, cFloor, murmur] = result.rows;
  t.match(stage?.server, /stage 04/);
  t.ok((stage?.us_per_frame ?? 0) > 0, 'stage 04 was measured');
  t.ok((nodeFloor?.us_per_frame ?? 0) > 0, 'the Node floor was measured');
  const hasCc = spawnSync('cc', ['--version']).status === 0;
  if (hasCc) {
    t.equal(cFloor?.absent, null, 'with cc, the C floor is built and measured');
    t.equal(cFloor?.vs_c_floor, 1, 'the C floor is 1× itself');
    t.ok((stage?.vs_c_floor ?? 0) > 0, 'stage 04 has a ratio to the C floor');
  } else {
    t.match(cFloor?.absent, /no C compiler/, 'without cc, it says so');
  }
  t.match(murmur?.absent, /no run\.sh in \/nonexistent\/murmur-harness/, 'a wrong harness folder is named, not silently skipped');
  t.equal(stage?.vs_murmur ?? null, null, 'no murmur, no ratio to it');
  t.match(run.stdout, /\| murmur \(Mumble server\) \| not measured: no run\.sh/, 'the printed table lists it as not measured');
  t.end();
});

t.test('--server cannot rewrite the sweep', (t) => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--server', 'true', '--sweep'], { encoding: 'utf8', timeout: 30_000 });
  t.not(run.status, 0, 'refused');
  t.match(run.stderr, /--sweep measures the stage 04 server/, 'with a reason');
  t.end();
});

t.test('load plan: rooms of K with ids like bench-0007, talkers spread evenly', (t) => {
  const users = planUsers({ clients: 10, roomSize: 4, talking: 0.5 });
  t.same(users.map((u) => u.room), ['bench-0000', 'bench-0000', 'bench-0000', 'bench-0000', 'bench-0001', 'bench-0001', 'bench-0001', 'bench-0001', 'bench-0002', 'bench-0002']);
  t.same(users.map((u) => u.talks), [false, true, false, true, false, true, false, true, false, true], 'every other user talks');
  t.equal(new Set(users.map((u) => u.name)).size, 10, 'names are unique');
  t.equal(planUsers({ clients: 7, roomSize: 8, talking: 1 }).filter((u) => u.talks).length, 7, 'talking 1: everyone');
  t.equal(planUsers({ clients: 7, roomSize: 8, talking: 0 }).filter((u) => u.talks).length, 0, 'talking 0: nobody');
  t.end();
});

t.test('CPU lists read like the kernel writes them', (t) => {
  t.same(parseCpuList('0'), [0]);
  t.same(parseCpuList('0-3,8'), [0, 1, 2, 3, 8]);
  t.same(parseCpuList('1,3-4\n'), [1, 3, 4]);
  t.end();
});

t.test('percentile is nearest-rank, median is the middle', (t) => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
  t.equal(percentile(hundred, 50), 50);
  t.equal(percentile(hundred, 99), 99);
  t.equal(percentile(hundred, 100), 100);
  t.equal(percentile([7], 99), 7);
  t.ok(Number.isNaN(percentile([], 50)), 'no samples: NaN, not 0');
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.end();
});

t.test('plot axes use round ticks that cover the data', (t) => {
  t.same(niceTicks(47), [0, 10, 20, 30, 40, 50]);
  t.same(niceTicks(1000), [0, 200, 400, 600, 800, 1000]);
  t.same(niceTicks(7.5), [0, 2, 4, 6, 8]);
  t.end();
});

t.test('--stage 05 forwards Opus-sized packets on murmur\'s load shape and prints its fields as JSON', (t) => {
  const args = ['--import', 'tsx', 'bench/run.ts', '--stage', '05', '--clients', '16', '--seconds', '2', '--warmup', '0.5', '--json'];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 90_000 });
  t.equal(run.status, 0, `bench exits 0; stderr: ${run.stderr.slice(-800)}`);
  const lines = run.stdout.trim().split('\n');
  let result: Record<string, unknown> = {};
  t.doesNotThrow(() => (result = JSON.parse(lines[lines.length - 1]!)), `last line is JSON: ${lines[lines.length - 1]}`);
  t.equal(result.stage, '05', 'stage 05 was measured');
  t.equal(result.packet_bytes, 60, 'Opus-sized packets, as murmur\'s harness sends');
  for (const field of ['cpu_us_per_received_packet', 'cpu_us_per_forwarded_copy', 'latency_ms_p50', 'latency_ms_p99', 'server_rss_mb_idle', 'server_rss_mb', 'worst_client_share']) {
    t.type(result[field], 'number', `${field} is a number`);
  }
  // 16 talkers send ~800 packets/s; each reaches its 7 room-mates, so copies are ~7x the packets.
  const sent = result.packets_sent_per_s as number;
  const copies = result.copies_received_per_s as number;
  t.ok(sent > 0, `packets were sent (${sent}/s)`);
  t.ok(copies > 5 * sent && copies <= 7.1 * sent, `each packet reached up to 7 room-mates and no one else (${copies} copies/s for ${sent} packets/s)`);
  t.ok((result.latency_ms_p50 as number) > 0, 'send -> receive time was measured');
  t.type(result.kept_up, 'boolean', 'kept up is judged');
  t.end();
});

t.test('--stage 05 --cpu-prof writes a V8 CPU profile of the stage 05 server itself', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-prof-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const args = ['--import', 'tsx', 'bench/run.ts', '--stage', '05', '--clients', '16', '--seconds', '2', '--warmup', '0.5', '--cpu-prof', dir];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 90_000 });
  t.equal(run.status, 0, `bench exits 0; stderr: ${run.stderr.slice(-800)}`);
  const profiles = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'));
  t.ok(profiles.length > 0, `a .cpuprofile was written into ${dir} (found: ${readdirSync(dir).join(', ') || 'nothing'})`);
  // The server's main thread runs the stage's code: its profile names 05-opus/ files (the load
  // generator, which also imports 05-opus/protocol.ts, is not profiled: it would have no server.ts).
  const urls = profiles.flatMap((name) => (JSON.parse(readFileSync(join(dir, name), 'utf8')) as { nodes: { callFrame: { url: string } }[] }).nodes.map((node) => node.callFrame.url));
  t.ok(urls.some((url) => url.endsWith('05-opus/server.ts')), 'a profile holds functions of 05-opus/server.ts: the stage 05 server was profiled');
  t.end();
});

t.test('--cpu-prof profiles one server: with --compare it is refused, with a reason', (t) => {
  const args = ['--import', 'tsx', 'bench/run.ts', '--stage', '05', '--compare', '--cpu-prof', '/tmp/never-written'];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30_000 });
  t.not(run.status, 0, 'bench refuses the combination');
  t.match(run.stderr, /--cpu-prof profiles one server/, `it says why; stderr: ${run.stderr.slice(-400)}`);
  t.end();
});
