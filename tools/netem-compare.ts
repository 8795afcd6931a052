// Prices TCP against UDP on a lossy link, with the kernel's own TCP (retransmissions, head-of-line
// blocking) rather than a simulation:
//   sudo npx tsx tools/netem-compare.ts [--messages 500] [--loss 1,5,10]
// It makes two network namespaces joined by a veth pair, makes the link lose packets (tc netem
// `loss P% delay 10ms` on both sides; where the kernel has no netem, an nftables rule that drops
// P% of packets at random on both sides, with no added delay), sends one 64-byte message every
// 20 ms over TCP and over UDP at the same time, and reports per message: lost (UDP), later than
// 60/100/200 ms (TCP holds every later message behind a lost one), p50/p99 one-way delay.
// It removes its namespaces on exit (also on Ctrl+C) and stops by itself. Needs root and `ip`
// (iproute2); prints "SKIP: reason" and exits 0 where the machine cannot do it.
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const MESSAGE_BYTES = 64; // about one 24 kb/s Opus packet and its headers
const INTERVAL_MS = 20;
const PORT = 7006;

const args = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
}
const nowMs = () => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC: the same clock in every process here

// ---- the two roles, each run inside its namespace ----

if (option('role', '') === 'receive') {
  const count = Number(option('messages', '500'));
  const tcpDelays = new Map<number, number>();
  const udpDelays = new Map<number, number>();
  const udp = dgram.createSocket('udp4');
  udp.on('message', (data) => {
    if (data.length === MESSAGE_BYTES && !udpDelays.has(data.readUInt32BE(0))) udpDelays.set(data.readUInt32BE(0), nowMs() - data.readDoubleBE(4));
  });
  udp.bind(PORT);
  const server = net.createServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      const now = nowMs();
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= MESSAGE_BYTES) {
        tcpDelays.set(pending.readUInt32BE(0), now - pending.readDoubleBE(4));
        pending = pending.subarray(MESSAGE_BYTES);
      }
    });
    socket.on('end', () => {
      // TCP delivered everything; give straggling datagrams a moment, then report.
      setTimeout(() => {
        console.log(JSON.stringify({ count, tcp: [...tcpDelays.values()], udp: [...udpDelays.values()] }));
        process.exit(0);
      }, 500);
    });
  });
  server.listen(PORT, () => console.log('ready'));
  setTimeout(() => process.exit(3), (count * INTERVAL_MS) + 60_000).unref();
} else if (option('role', '') === 'send') {
  const count = Number(option('messages', '500'));
  const host = option('to', '');
  const udp = dgram.createSocket('udp4');
  const tcp = net.connect(PORT, host, () => {
    tcp.setNoDelay(true); // each message leaves at once, as a voice client's would
    let sequence = 0;
    const timer = setInterval(() => {
      const message = Buffer.alloc(MESSAGE_BYTES);
      message.writeUInt32BE(sequence, 0);
      message.writeDoubleBE(nowMs(), 4);
      tcp.write(message);
      udp.send(message, PORT, host);
      if (++sequence === count) {
        clearInterval(timer);
        tcp.end(() => udp.close());
      }
    }, INTERVAL_MS);
  });
  tcp.on('error', (error) => {
    console.error(`sender: ${error.message}`);
    process.exit(1);
  });
} else {
  await main();
}

// ---- the driver ----

function sh(command: string[]): { ok: boolean; error: string } {
  const result = spawnSync(command[0], command.slice(1), { encoding: 'utf8' });
  return { ok: result.status === 0, error: (result.stderr || result.error?.message || `exit ${result.status}`).trim() };
}

function must(command: string[]): void {
  const result = sh(command);
  if (!result.ok) throw new Error(`${command.join(' ')}: ${result.error}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) return skip('needs root (network namespaces)');
  if (!sh(['ip', '-V']).ok) return skip('`ip` not found: apt-get install -y iproute2');
  const messages = Number(option('messages', '500'));
  const losses = option('loss', '1,5,10').split(',').map(Number);
  const a = `vc06a${process.pid}`;
  const b = `vc06b${process.pid}`;
  const cleanup = () => {
    sh(['ip', 'netns', 'del', a]);
    sh(['ip', 'netns', 'del', b]);
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  process.on('SIGTERM', () => {
    cleanup();
    process.exit(143);
  });
  try {
    try {
      must(['ip', 'netns', 'add', a]);
      must(['ip', 'netns', 'add', b]);
      must(['ip', 'link', 'add', 'vc06x', 'netns', a, 'type', 'veth', 'peer', 'name', 'vc06y', 'netns', b]);
      must(['ip', '-n', a, 'addr', 'add', '10.206.0.1/24', 'dev', 'vc06x']);
      must(['ip', '-n', b, 'addr', 'add', '10.206.0.2/24', 'dev', 'vc06y']);
      for (const [ns, dev] of [[a, 'vc06x'], [b, 'vc06y']]) {
        must(['ip', '-n', ns, 'link', 'set', dev, 'up']);
        must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      }
    } catch (error) {
      return skip(`cannot make network namespaces: ${(error as Error).message}`);
    }

    const lossMethods = chooseLossMethod(a, b);
    if (typeof lossMethods === 'string') return skip(lossMethods);
    console.log(`link: veth between two namespaces, loss by ${lossMethods.description}`);
    console.log(`${messages} messages of ${MESSAGE_BYTES} bytes every ${INTERVAL_MS} ms, over TCP (Nagle off) and UDP at once\n`);
    console.log('| loss each way | UDP lost | TCP arrived | UDP p50 / p99 delay | TCP late > 60 ms | > 100 ms | > 200 ms | TCP p50 / p99 delay | TCP max |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const loss of losses) {
      lossMethods.set(loss);
      const result = await runOnce(a, b, messages);
      const tcp = [...result.tcp].sort((x, y) => x - y);
      const udp = [...result.udp].sort((x, y) => x - y);
      const late = (ms: number) => `${tcp.filter((d) => d > ms).length} (${((100 * tcp.filter((d) => d > ms).length) / messages).toFixed(1)} %)`;
      const f = (ms: number) => ms.toFixed(1);
      console.log(
        `| ${loss} % | ${messages - udp.length} (${((100 * (messages - udp.length)) / messages).toFixed(1)} %) | ${tcp.length} of ${messages} | ${f(percentile(udp, 50))} / ${f(percentile(udp, 99))} ms | ${late(60)} | ${late(100)} | ${late(200)} | ${f(percentile(tcp, 50))} / ${f(percentile(tcp, 99))} ms | ${f(tcp[tcp.length - 1])} ms |`,
      );
    }
    console.log('\nDelays are one way, send to arrival. TCP loses nothing; its price is lateness: every message behind a lost segment waits for the resend.');
  } finally {
    cleanup();
  }
}

function skip(reason: string): void {
  console.log(`SKIP: ${reason}`);
}

/** netem if the kernel has it, else nftables' random drop; a string says why neither works. */
function chooseLossMethod(a: string, b: string): { description: string; set(loss: number): void } | string {
  const sides = [[a, 'vc06x'], [b, 'vc06y']];
  const netem = sh(['ip', 'netns', 'exec', a, 'tc', 'qdisc', 'add', 'dev', 'vc06x', 'root', 'netem', 'loss', '1%', 'delay', '10ms']);
  if (netem.ok) {
    return {
      description: 'tc netem (each side: loss P %, delay 10 ms, so RTT 20 ms)',
      set(loss) {
        for (const [ns, dev] of sides) {
          must(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'netem', 'loss', `${loss}%`, 'delay', '10ms']);
        }
      },
    };
  }
  const netemWhy = `tc netem: "${netem.error}" (this kernel lacks sch_netem: ${kernelOption('CONFIG_NET_SCH_NETEM')})`;
  for (const [ns] of sides) {
    const made = sh(['ip', 'netns', 'exec', ns, 'nft', 'add table inet lossy; add chain inet lossy out { type filter hook output priority 0; }']);
    if (!made.ok) return `neither works here: ${netemWhy}; nftables: "${made.error}" (apt-get install -y nftables)`;
  }
  return {
    description: `nftables random drop on each side's output (${netemWhy}), no added delay: RTT ~0.1 ms, so TCP lateness here is its timers, not the path`,
    set(loss) {
      for (const [ns] of sides) {
        must(['ip', 'netns', 'exec', ns, 'nft', `flush chain inet lossy out; add rule inet lossy out meta l4proto { tcp, udp } numgen random mod 1000 < ${Math.round(loss * 10)} drop`]);
      }
    },
  };
}

/** The kernel's build setting for `name`, from /proc/config.gz where the kernel offers it. */
function kernelOption(name: string): string {
  const found = spawnSync('sh', ['-c', `zcat /proc/config.gz 2>/dev/null | grep -E '^(# )?${name}[ =]'`], { encoding: 'utf8' });
  return found.status === 0 ? `/proc/config.gz says "${found.stdout.trim()}"` : 'no /proc/config.gz to check';
}

async function runOnce(a: string, b: string, messages: number): Promise<{ tcp: number[]; udp: number[] }> {
  const self = fileURLToPath(import.meta.url);
  const node = [process.execPath, '--import', 'tsx', self];
  const receiver = spawn('ip', ['netns', 'exec', b, ...node, '--role', 'receive', '--messages', String(messages)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  let senderStarted = false;
  const done = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      receiver.kill();
      reject(new Error('the receiver did not finish in time'));
    }, messages * INTERVAL_MS + 90_000);
    receiver.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('ready\n') && !senderStarted) {
        senderStarted = true;
        spawn('ip', ['netns', 'exec', a, ...node, '--role', 'send', '--to', '10.206.0.2', '--messages', String(messages)], { stdio: 'inherit' });
      }
    });
    receiver.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`the receiver exited with ${code}`));
    });
  });
  const text = await done;
  const json = text.split('\n').find((line) => line.startsWith('{'));
  if (!json) throw new Error(`no result from the receiver: ${text}`);
  return JSON.parse(json) as { tcp: number[]; udp: number[] };
}
