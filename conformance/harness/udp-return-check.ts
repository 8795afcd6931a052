// A client check shared by the stages whose client keeps stage 06's UDP path rules (06, 07, 08;
// README "Timing and limits": UDP down, UDP up again): once ON UDP, 3 PINGs in a row unanswered make
// the client fall back (PATH tcp, voice as TCP VOICE), and 2 PONGs in a row, not 1, bring it back
// (PATH udp, voice as VOICE_UP). The README: PINGs every 2 s; "a PING is unanswered when the next
// one is sent without its PONG".
//
// The check plays the server: it answers PINGs until the client says PATH udp, then answers none
// until it says PATH tcp, then answers one, skips one, and answers two in a row. Each PING is
// decided 100 ms after it arrives (a PONG that late is still long before the next PING), so a
// PATH frame the client sent just before that PING has been read by then. Judged by PING numbers:
//   - the fall-back: how many of the unanswered PINGs were known unanswered (the next PING had
//     come, with 1 s of slack) when PATH tcp came: 3, not 1, 2 or 4;
//   - the return: how many PONGs in a row the client had when PATH udp came: 2, not 1, and
//     within 1 s of the second (not at the PING after it).
// The same PINGs time the README's interval: the median gap between them must meet 2 s by the rate
// rule (tolerance.ts, ±10%); a client that stops PINGing for longer than that allows (and the
// check's slack) ends the run early, its open gap counted as one more, long, gap.
// A run takes about 16 s at the README's 2 s interval.
import { FRAME_MS, SAMPLE_RATE } from '#shared/audio/format.ts';
import { expect, type Check, type CheckContext } from './checks.ts';
import { describeFrames, finishSession, orStop, startSession, type Session } from './client-session.ts';
import { DatagramPeer, type ReceivedDatagram } from './datagram-peer.ts';
import { jsonFrameBytes, jsonObjectOf } from './frame-wire.ts';
import { withStallWatch, type StallWatch } from './stall-watch.ts';
import { CheckFailure } from './check-failure.ts';
import { describeWindow, judgeDuration, periodWindow, showMs } from './tolerance.ts';

const WELCOME = 0x02;
const VOICE = 0x03;
const USERS = 0x06;
const PATH = 0x0e;
const TYPE_NAMES: Record<number, string> = { 0x01: 'HELLO', [VOICE]: 'VOICE', 0x04: 'BYE', [PATH]: 'PATH' };
const VOICE_UP = 0x01;
const PING = 0x03;
const PONG = 0x04;

const OWN_ID = 7;
const TOKEN = Buffer.from('5ac1e0b79d2f4e63', 'hex');
/** The README's numbers. */
const PING_INTERVAL_MS = 2_000;
const MISSED_PINGS_FOR_TCP = 3;
const PONGS_FOR_UDP = 2;
/** Each PING is answered (or not) this long after it arrives: PATH frames sent before it are read by then. */
const DECIDE_AFTER_MS = 100;
/** Half the PING interval: the slack on "when the next PING was sent" and on "at the second PONG". */
const SLACK_MS = PING_INTERVAL_MS / 2;
/** The accepted median gap between PINGs: the rate rule on the README's interval. */
const PING_GAP = periodWindow(PING_INTERVAL_MS);
/** No PING for this long and the interval is already wrong: the run ends (a client pinging every 10 s would take a minute). */
const NO_PING_FOR_MS = PING_GAP.latestMs + SLACK_MS;
/**
 * A grader stall shorter than this cannot change a verdict (the margins above are 900 ms or more);
 * a failure while the grader stalled longer is a SKIP ("could not judge"), not a FAIL.
 */
const STALL_ALLOWANCE_MS = 500;
/** After the client is back on UDP, its VOICE_UP are collected this long. */
const VOICE_UP_WINDOW_MS = 1_200;
/** Unanswered PINGs after which the check stops waiting for PATH tcp (the README's 3, and 2 more). */
const GIVE_UP_UNANSWERED = MISSED_PINGS_FOR_TCP + 2;
/** What the check answers once the client fell back: one PONG, a PING skipped, two PONGs in a row. */
const RETURN_PLAN = [true, false, true, true];

interface Ping {
  number: number;
  /** performance.now() when it arrived. */
  at: number;
  phase: 'up' | 'down' | 'return';
  /** Set when decided: whether the check answered it, and when the PONG went out. */
  answered?: boolean;
  pongAt?: number;
}

interface PathChange {
  path: string;
  /** When the check first saw the frame (polled every 20 ms and at each decision). */
  at: number;
  /** The frame's index among the client's frames (HELLO is 0): orders it against TCP VOICE exactly. */
  index: number;
}

export interface UdpReturnStage {
  /** WELCOME's protocol: "voice-chat/06". */
  protocol: string;
  /** Fields every user in USERS carries besides id and name (stage 08: in_call). */
  userFields?: Record<string, unknown>;
}

export function udpReturnCheck(stage: UdpReturnStage): Check {
  return {
    name: `client: on UDP, ${MISSED_PINGS_FOR_TCP} PINGs in a row unanswered make it fall back (PATH tcp, voice as TCP VOICE), and ${PONGS_FOR_UDP} PONGs in a row, not 1, bring it back (PATH udp, voice as VOICE_UP); it PINGs every ${showMs(PING_INTERVAL_MS)} throughout (the median gap)`,
    subject: 'client',
    run: (context) => withStallWatch((watch) => runScenario(context, stage, watch)),
  };
}

async function runScenario(context: CheckContext, stage: UdpReturnStage, watch: StallWatch): Promise<void> {
  const udp = await DatagramPeer.start();
  let welcomedAt = 0;
  let session: Session;
  try {
    session = await startSession(context, 'Ada', ['--input', 'tone:440', '--output', 'null', '--duration', '40'], (hello) => {
      const room = typeof hello.room === 'string' ? hello.room : 'lobby';
      welcomedAt = performance.now();
      return Buffer.concat([
        jsonFrameBytes(WELCOME, { name: 'Ada', room, id: OWN_ID, protocol: stage.protocol, codec: 'opus', sample_rate: SAMPLE_RATE, frame_ms: FRAME_MS, channels: 1, token: TOKEN.toString('hex'), udp_port: udp.port }),
        jsonFrameBytes(USERS, { room, users: [{ id: OWN_ID, name: 'Ada', ...stage.userFields }] }),
      ]);
    });
  } catch (error) {
    udp.close();
    throw error;
  }
  const close = session.fake.close.bind(session.fake);
  session.fake.close = async () => (udp.close(), close());
  watch.reset(); // the client's start-up is not part of the timing

  const pings: Ping[] = [];
  const paths: PathChange[] = [];
  let phase: Ping['phase'] = 'up';
  let returnStep = 0;
  const observePaths = () => {
    const frames = session.sent();
    const seen = frames.filter((frame) => frame.type === PATH).length;
    if (seen === paths.length) return;
    frames.forEach((frame, index) => {
      if (frame.type !== PATH || paths.some((p) => p.index === index)) return;
      const parsed = jsonObjectOf(frame.payload);
      paths.push({ path: 'object' in parsed ? String(parsed.object.path) : '(not JSON)', at: performance.now(), index });
    });
  };
  const answer = (ping: Ping, datagram: ReceivedDatagram) => {
    const pong = Buffer.alloc(13);
    pong[0] = PONG;
    datagram.data.copy(pong, 1, 9, 17); // ping number and client time, as received
    pong.writeUInt32BE(udp.received.length, 9);
    ping.pongAt = performance.now();
    udp.send(pong, datagram);
  };
  const decide = (ping: Ping, datagram: ReceivedDatagram) => {
    observePaths();
    if (phase === 'up' && paths.some((p) => p.path === 'udp')) phase = 'down';
    if (phase === 'down' && paths.some((p) => p.path === 'tcp')) phase = 'return';
    ping.phase = phase;
    ping.answered = phase === 'up' || (phase === 'return' && (RETURN_PLAN[returnStep++] ?? true));
    if (ping.answered) answer(ping, datagram);
  };
  udp.onDatagram = (datagram) => {
    const { data } = datagram;
    if (data.length !== 17 || data[0] !== PING || !data.subarray(1, 9).equals(TOKEN)) return;
    const ping: Ping = { number: data.readUInt32BE(9), at: datagram.at, phase };
    pings.push(ping);
    setTimeout(() => decide(ping, datagram), DECIDE_AFTER_MS);
  };

  // Runs until the story is told: back on UDP (plus a window of its voice), or given up.
  await orStop(session, async () => {
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        observePaths();
        const now = performance.now();
        const back = returnedPath(paths);
        const returning = pings.filter((p) => p.phase === 'return');
        const quietSince = pings.at(-1)?.at ?? welcomedAt;
        const done =
          now - welcomedAt > 38_000 ||
          now - quietSince > NO_PING_FOR_MS ||
          (phase === 'up' && now - welcomedAt > 5_000) ||
          pings.filter((p) => p.phase === 'down').length > GIVE_UP_UNANSWERED ||
          (back !== undefined && now - back.at > VOICE_UP_WINDOW_MS) ||
          (back === undefined && returning.length > RETURN_PLAN.length); // the PING after the 2nd PONG in a row came
        if (done) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
  });
  const endedAt = performance.now();
  session.client.type('exit\n');
  const { frames } = await finishSession(session, 5_000, 'after the command exit');

  const since = (at: number) => `${((at - welcomedAt) / 1000).toFixed(2)} s`;
  const voiceUp = udp.received.filter((d) => d.data[0] === VOICE_UP);
  const story = () =>
    [
      `PINGs (time after WELCOME): ${pings.map((p) => `${p.number} at ${since(p.at)} ${p.answered === undefined ? '(not decided)' : p.answered ? `answered` : 'unanswered'}`).join(', ')}`,
      `PATH sent: ${paths.map((p) => `${p.path} seen at ${since(p.at)}`).join(', ') || 'none'}`,
      `over TCP after WELCOME: ${describeFrames(frames, TYPE_NAMES)}`,
      `VOICE_UP datagrams: ${voiceUp.length}${voiceUp.length > 0 ? `, from ${since(voiceUp[0]!.at)} to ${since(voiceUp.at(-1)!.at)}` : ''}`,
    ].join('; ');

  const firstUdp = paths.find((p) => p.path === 'udp');
  watch.judge(() =>
    expect(firstUdp !== undefined && paths[0] === firstUdp, 'the client did not send PATH udp once its first PING was answered, so this check could not take UDP away', {
      expected: 'PATH {"path":"udp"} after the first PONG, before any PATH tcp',
      actual: story(),
      hint: 'on the first PONG, send PATH {"path":"udp"} and your voice as VOICE_UP',
    }),
    STALL_ALLOWANCE_MS,
  );

  watch.judge(() => expectPingInterval(pings, endedAt, story), STALL_ALLOWANCE_MS);

  const fallback = paths.find((p) => p.path === 'tcp' && p.index > firstUdp!.index);
  const unanswered = pings.filter((p) => p.phase === 'down');
  const nextPing = (ping: Ping) => pings[pings.indexOf(ping) + 1];
  // An unanswered PING is known unanswered when the next one is sent: count those whose next PING came by PATH tcp (+ slack).
  const knownBy = (at: number) => unanswered.filter((p) => { const next = nextPing(p); return next !== undefined && next.at <= at + SLACK_MS; }).length;
  const missed = fallback === undefined ? knownBy(Infinity) : knownBy(fallback.at);
  const missedNumbers = unanswered.slice(0, missed).map((p) => p.number).join(', ');
  watch.judge(() =>
    expect(fallback !== undefined && missed === MISSED_PINGS_FOR_TCP, fallback === undefined
      ? `the fall-back is not after ${MISSED_PINGS_FOR_TCP} PINGs in a row unanswered: no PATH tcp after ${missed} (PINGs ${missedNumbers})`
      : `the fall-back is not after ${MISSED_PINGS_FOR_TCP} PINGs in a row unanswered: PATH tcp came after ${missed}${missed > 0 ? ` (PINGs ${missedNumbers})` : ''}`, {
      expected: `PATH {"path":"tcp"} when the PING after the ${MISSED_PINGS_FOR_TCP}rd unanswered one is sent (the README: UDP is down after ${MISSED_PINGS_FOR_TCP} PINGs in a row unanswered, one every ${showMs(PING_INTERVAL_MS)}; a PING is unanswered when the next is sent without its PONG; ${showMs(SLACK_MS)} of slack), not after 1 or 2`,
      actual: story(),
      hint: `count the PINGs in a row whose PONG had not come when the next PING went out; at ${MISSED_PINGS_FOR_TCP} send PATH tcp and your voice as TCP VOICE (and go on pinging)`,
    }),
    STALL_ALLOWANCE_MS,
  );

  const back = returnedPath(paths);
  const returning = pings.filter((p) => p.phase === 'return');
  // The PONGs in a row the client had when PATH udp came back (or by the end, if it never did).
  let inRow = 0;
  for (const ping of returning) {
    if (ping.answered === undefined || (back !== undefined && (ping.pongAt ?? ping.at) >= back.at)) break;
    inRow = ping.answered ? inRow + 1 : 0;
  }
  const answeredNumbers = returning.filter((p) => p.answered).map((p) => p.number);
  const lastPong = [...returning].reverse().find((p) => p.pongAt !== undefined && (back === undefined || p.pongAt < back.at));
  const lateMs = back === undefined || lastPong === undefined ? 0 : back.at - lastPong.pongAt!;
  watch.judge(() =>
    expect(back !== undefined && inRow === PONGS_FOR_UDP && lateMs <= SLACK_MS, back === undefined
      ? `the return to UDP is not after ${PONGS_FOR_UDP} PONGs in a row: no PATH udp after ${inRow} in a row (PONGs to PINGs ${answeredNumbers.join(', ') || 'none'})`
      : inRow !== PONGS_FOR_UDP
        ? `the return to UDP is not after ${PONGS_FOR_UDP} PONGs in a row: PATH udp came after ${inRow} in a row`
        : `the return to UDP is not at the ${PONGS_FOR_UDP}nd PONG in a row: PATH udp came ${Math.round(lateMs)} ms after it`, {
      expected: `after PATH tcp the check answered one PING, skipped one, then answered two: PATH {"path":"udp"} right after the second of those two (the README: UDP is up again after ${PONGS_FOR_UDP} PONGs in a row; within ${showMs(SLACK_MS)}), never after the first`,
      actual: story(),
      hint: `while on TCP, count the PINGs answered in a row (an unanswered one resets the count); at ${PONGS_FOR_UDP} send PATH udp and your voice as VOICE_UP again`,
    }),
    STALL_ALLOWANCE_MS,
  );

  // The voice follows the path: TCP VOICE between PATH tcp and PATH udp, VOICE_UP after it.
  const onTcp = frames.slice(fallback!.index - 1, back!.index - 1).filter((f) => f.type === VOICE).length;
  const tcpMs = back!.at - fallback!.at;
  // 200 ms (and any stall of the grader's) for datagrams sent before PATH tcp but read after it.
  const upWhileTcp = voiceUp.filter((d) => d.at > fallback!.at + 200 + watch.worstLateMs && d.at < back!.at - 200).length;
  watch.judge(() =>
    expect(onTcp >= (0.8 * tcpMs) / FRAME_MS && upWhileTcp === 0, 'after falling back the voice did not go over TCP', {
      expected: `about ${Math.round(tcpMs / FRAME_MS)} TCP VOICE frames between PATH tcp and PATH udp (${showMs(tcpMs)}; at least 80 %), and no VOICE_UP then`,
      actual: `${onTcp} TCP VOICE frames, ${upWhileTcp} VOICE_UP datagrams; ${story()}`,
      hint: 'while UDP is down, send voice as TCP VOICE frames, as stage 05 did',
    }),
    STALL_ALLOWANCE_MS,
  );
  const tcpAfter = frames.slice(back!.index - 1).filter((f) => f.type === VOICE).length;
  const upAfter = voiceUp.filter((d) => d.at > back!.at && d.at <= back!.at + VOICE_UP_WINDOW_MS).length;
  watch.judge(() =>
    expect(upAfter >= (0.4 * VOICE_UP_WINDOW_MS) / FRAME_MS && tcpAfter <= 2, 'back on UDP the voice did not go as VOICE_UP again', {
      expected: `about ${VOICE_UP_WINDOW_MS / FRAME_MS} VOICE_UP datagrams in the ${showMs(VOICE_UP_WINDOW_MS)} after PATH udp (at least 40 %: a stall of the grader's may leave some unread), and no more TCP VOICE`,
      actual: `${upAfter} VOICE_UP datagrams, ${tcpAfter} TCP VOICE frames after PATH udp; ${story()}`,
      hint: 'once you sent PATH udp, send each voice packet as a VOICE_UP datagram again',
    }),
    STALL_ALLOWANCE_MS,
  );
}

/**
 * The median gap between the PINGs (by arrival) meets the README's interval; a run that ended for
 * want of PINGs counts its open gap (from the last PING to the end) as one more.
 */
function expectPingInterval(pings: Ping[], endedAt: number, story: () => string): void {
  if (pings.length === 0) return; // no PING at all already failed the PATH udp judgement
  const gaps = pings.slice(1).map((ping, i) => ping.at - pings[i]!.at);
  const openMs = endedAt - pings.at(-1)!.at;
  const open = openMs > NO_PING_FOR_MS;
  if (open) gaps.push(openMs);
  const sorted = [...gaps].sort((a, b) => a - b);
  const median = sorted.length === 0 ? Infinity : sorted[Math.floor(sorted.length / 2)]!;
  if (judgeDuration(median, PING_GAP) === 'ok') return;
  throw new CheckFailure(`the PING interval is not ${showMs(PING_INTERVAL_MS)}: the median gap between PINGs was ${showMs(median)}${open && median === openMs ? ' or more' : ''}`, {
    expected: `a PING every ${showMs(PING_INTERVAL_MS)} from WELCOME on, on either path (the median gap ${describeWindow(PING_GAP)}: ±10 %)`,
    actual: `gaps between PINGs: ${gaps.map((gap) => Math.round(gap)).join(', ')} ms${open ? ` (the last: no PING since, when the check stopped waiting after ${showMs(NO_PING_FOR_MS)})` : ''}; ${story()}`,
    hint: `send PING n+1 ${showMs(PING_INTERVAL_MS)} after PING n for as long as you are connected: more often wastes the server's PONG budget, less often lets NAT mappings expire and notices a broken path late`,
  });
}

/** The PATH udp that follows the first PATH tcp after the first PATH udp: the client back on UDP. */
function returnedPath(paths: PathChange[]): PathChange | undefined {
  const firstUdp = paths.findIndex((p) => p.path === 'udp');
  const fallback = paths.findIndex((p, i) => i > firstUdp && p.path === 'tcp');
  if (firstUdp === -1 || fallback === -1) return undefined;
  return paths.find((p, i) => i > fallback && p.path === 'udp');
}
