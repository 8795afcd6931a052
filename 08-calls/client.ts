// Stage 08 client: joins a room of the server with a name, sends its voice from the --input as
// Opus packets while the voice gate (or push-to-talk) is open, as UDP datagrams once the server
// answers our PINGs (else over the TCP connection, as in stage 05), decodes and mixes the voices
// the server forwards from the room's other members (by either path) and writes the mix to the
// --output, shows who is in the room and who is speaking, lists the rooms and moves between them,
// chats with the room (a typed line is TEXT; commands start with "/") and sends and receives
// files, and calls another user anywhere on the server (directly, peer to peer, or relayed
// through the server), until the user leaves.
// This file checks the options and holds the conversation on one connection (the handshake,
// each message routed to its part, leaving); the parts are audio-pipeline.ts (voice both ways),
// udp-path.ts (the datagram socket, PING/PONG, which path our voice takes, stats),
// voice-receiver.ts (one decoder and jitter buffer per speaker, mixed at our own clock),
// client-state.ts (what the server has told us: applyNews), commands.ts (what the user types),
// file-sender.ts and file-receiver.ts (our transfers both ways), downloads.ts (where files land),
// call-state.ts (the call we make or take) and call-path.ts (a call's probes and path).
import type { Socket } from 'node:net';
import { realScheduler } from '#shared/audio/frame-clock.ts';
import { FRAME_MS } from '#shared/audio/format.ts';
import { openSink, openSource } from '#shared/audio/open-audio.ts';
import { AudioDeviceUnavailable, AudioFormatError } from '#shared/audio/types.ts';
import { OPUS_DEFAULT_BITRATE } from '#shared/codec/opus.ts';
import { connect } from '#shared/connect.ts';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { hostPort } from '#shared/host-port.ts';
import { explainConnectError } from '#shared/network-errors.ts';
import { FRAMING_ERROR_CODES, ProtocolError } from '#shared/protocol-error.ts';
import { UserError } from '#shared/user-error.ts';
import { nameProblem, printable } from '#shared/user-name.ts';
import { DEFAULT_GATE, VoiceGate, type VoiceGateOptions } from '#shared/voice-gate.ts';
import { AudioPipeline } from './audio-pipeline.ts';
import {
  CALL_GUARD_MS,
  parseAddress,
  parseCallEnd,
  parseCallStart,
  parseFound,
  parseIncomingCall,
  parseRinging,
  type CallStart,
  type UdpAddress,
} from './call-messages.ts';
import { CallPath, type CallPathState, DirectDatagrams } from './call-path.ts';
import { CALL_LOOKUP_FOR_MS, CallState, callRequestFrame, clockTime } from './call-state.ts';
import { applyNews, ClientState, type SpeakerStreams } from './client-state.ts';
import { parseRefused, parseServerText, parseTransferEnd } from './chat-messages.ts';
import { type CommandTarget, commandsHint, runCommand, showPushToTalk } from './commands.ts';
import { defaultDownloadsFolder, prepareDownloadsFolder } from './downloads.ts';
import { FileReceiver } from './file-receiver.ts';
import { FileSender, sendableProblem } from './file-sender.ts';
import { byeFrame, ErrorCode, helloFrame, MessageType, parseError, parseWelcome, pathFrame, PROTOCOL, roomProblem, serverMessageLimit, type Welcome } from './protocol.ts';
import { type ClientDisplay, createCommandInput, createDisplay, PlainDisplay, ringBell } from './terminal-display.ts';
import { type DatagramTarget, MIN_EXPECTED_LOSS_PERCENT, openUdpSocket, statsLines, UdpPath } from './udp-path.ts';

const WELCOME_TIMEOUT_MS = 10_000;
/** After BYE, how long the server gets to close its side before we cut the connection. */
const CLOSE_GRACE_MS = 1_000;
/** Longest hang-over accepted on the command line: past 10 s the gate hardly ever closes. */
const MAX_HANGOVER_MS = 10_000;
/** The room of a client that names none. */
export const DEFAULT_ROOM = 'lobby';
/** --bitrate, in kilobits per second: the Opus voice bitrate (default 24, ~55-byte packets). */
export const DEFAULT_BITRATE_KBPS = OPUS_DEFAULT_BITRATE / 1000;
export const MIN_BITRATE_KBPS = 6;
export const MAX_BITRATE_KBPS = 128;

export interface ClientOptions {
  name: string;
  /** The room to join first (default DEFAULT_ROOM); `join ROOM` on standard input moves to another. */
  room?: string;
  host: string;
  port: number;
  /** mic | tone:HZ | silence | FILE.wav */
  input: string;
  /** speaker | null | FILE.wav */
  output: string;
  /** Leave after this many seconds; without it, run until `exit`, Ctrl+C or the end of a file input. */
  durationSeconds?: number;
  /** Read the commands mute, unmute, users, rooms, join ROOM and exit (and Enter for push-to-talk) from standard input (default true). */
  commands?: boolean;
  /** Commands typed for the user, this many seconds after WELCOME (the demo's move to another room). */
  scriptedCommands?: { afterSeconds: number; command: string }[];
  /** Voice gate thresholds (default DEFAULT_GATE: open at -40 dBFS, close at -50, 300 ms hang-over). */
  gate?: Partial<VoiceGateOptions>;
  /** Send only while push-to-talk is on (Enter toggles it) instead of while the gate is open. */
  pushToTalk?: boolean;
  /** Opus bitrate of our voice in kb/s, MIN_BITRATE_KBPS to MAX_BITRATE_KBPS (default DEFAULT_BITRATE_KBPS). */
  bitrateKbps?: number;
  /** Where news and the status go (default: a terminal display, or plain lines when not a terminal). */
  display?: ClientDisplay;
  /** --tcp: never use UDP (no datagram at all; voice over the TCP connection as in stage 05). */
  tcpOnly?: boolean;
  /** --udp-via HOST:PORT: send the datagrams there (a relay) instead of to the server's address and udp_port. */
  udpVia?: DatagramTarget;
  /** --downloads DIR: where received files land (default ~/Downloads/voice-chat; created if missing). */
  downloads?: string;
  /** --no-files: cancel every offer at once (we are still told what was offered). */
  noFiles?: boolean;
  /** --send FILE (repeatable): offer each file to the room as soon as we are welcomed. */
  sendFiles?: string[];
  /** --say TEXT (repeatable): send each as a chat line as soon as we are welcomed. */
  sayLines?: string[];
  /** --call NAME: once welcomed (and our UDP address known), look NAME up once a second for up to 10 s, and call. */
  callName?: string;
  /** --auto-accept: accept every call at once. */
  autoAccept?: boolean;
  /** --relay: relay_only in every INVITE and ACCEPT (our address is never given to a peer; every call is relayed). */
  relay?: boolean;
  /** --block-direct (a test hook): drop every direct datagram received, as a filtering NAT would. */
  blockDirect?: boolean;
}

/** Reads --udp-via's HOST:PORT ([v6]:PORT for IPv6); throws UserError when it is not one. */
export function parseUdpVia(text: string): DatagramTarget {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 1 && port <= 0xffff)) {
    throw new UserError(`invalid --udp-via "${printable(text)}": give HOST:PORT, e.g. 127.0.0.1:9999 or [::1]:9999`, 2);
  }
  return { host: match[1] ?? match[2]!, port };
}

/** Joins, talks until the user leaves, and resolves; throws UserError on refusal or failure. */
export async function runClient(options: ClientOptions): Promise<void> {
  const problem = nameProblem(options.name);
  if (problem) throw new UserError(`invalid --name: ${problem}`, 2);
  const calleeProblem = options.callName === undefined ? null : nameProblem(options.callName);
  if (calleeProblem) throw new UserError(`invalid --call: ${calleeProblem}`, 2);
  const room = options.room ?? DEFAULT_ROOM;
  const badRoom = roomProblem(room);
  if (badRoom) throw new UserError(`invalid --room "${printable(room)}": ${badRoom}`, 2);
  const { durationSeconds } = options;
  if (durationSeconds !== undefined && !(durationSeconds > 0)) {
    throw new UserError(`invalid --duration ${durationSeconds}: give a number of seconds above 0`, 2);
  }
  const gate = { ...DEFAULT_GATE, ...options.gate };
  const gateMistake = gateProblem(gate);
  if (gateMistake) throw new UserError(gateMistake, 2);
  const bitrateKbps = options.bitrateKbps ?? DEFAULT_BITRATE_KBPS;
  // Written as !(ok) so that NaN (yargs' answer to --bitrate abc) is refused too.
  if (!(bitrateKbps >= MIN_BITRATE_KBPS && bitrateKbps <= MAX_BITRATE_KBPS)) {
    throw new UserError(`invalid --bitrate ${bitrateKbps}: give kilobits per second from ${MIN_BITRATE_KBPS} to ${MAX_BITRATE_KBPS} (default ${DEFAULT_BITRATE_KBPS})`, 2);
  }

  // Files next, before the server is bothered: a bad --downloads or --send is the user's to fix.
  let downloads: string;
  try {
    downloads = await prepareDownloadsFolder(options.downloads ?? defaultDownloadsFolder());
  } catch (error) {
    throw new UserError(`invalid --downloads ${printable(options.downloads ?? defaultDownloadsFolder())}: ${printable((error as Error).message)}`, 2);
  }
  for (const path of options.sendFiles ?? []) {
    const unsendable = await sendableProblem(path);
    if (unsendable) throw new UserError(`invalid --send: ${printable(unsendable)}`, 2);
  }

  // Audio first: a missing sound card is reported before we bother the server.
  const source = await openAudio(() => openSource(options.input));
  const sink = await openAudio(() => openSink(options.output)).catch(async (error: unknown) => {
    await source.stop();
    throw error;
  });
  try {
    const socket = await connect(options.host, options.port);
    const audio = new AudioPipeline(source, sink, new VoiceGate(gate), options.pushToTalk ?? false, Math.round(bitrateKbps * 1000), !options.tcpOnly);
    await talk(socket, { ...options, room, downloads }, audio);
  } finally {
    await source.stop();
    await sink.close(); // a WAV file is complete, the speaker has played what it holds
  }
}

/** Why the gate settings cannot work, in the words of the command line; null when they can. */
function gateProblem({ openDb, closeDb, hangoverMs }: VoiceGateOptions): string | null {
  // Written as !(ok) so that NaN (yargs' answer to --gate-open-db abc) is refused too.
  if (!(Number.isFinite(openDb) && openDb <= 0)) {
    return `invalid --gate-open-db ${openDb}: give a level in dBFS from 0 down (e.g. -40)`;
  }
  if (!(Number.isFinite(closeDb) && closeDb <= openDb)) {
    return `invalid --gate-close-db ${closeDb}: give a level in dBFS at most --gate-open-db (${openDb}), e.g. -50`;
  }
  if (!(hangoverMs >= 0 && hangoverMs <= MAX_HANGOVER_MS)) {
    return `invalid --gate-hangover-ms ${hangoverMs}: give milliseconds from 0 to ${MAX_HANGOVER_MS} (e.g. 300)`;
  }
  return null;
}

/** Turns the audio layer's one-line errors into UserErrors (no stack trace for the user). */
async function openAudio<T>(open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (error) {
    if (error instanceof AudioDeviceUnavailable || error instanceof AudioFormatError) {
      throw new UserError(error.message, 2);
    }
    throw error;
  }
}

/** The conversation on one connection: HELLO, WELCOME, USERS, then voice both ways, news and moves until BYE. */
function talk(socket: Socket, options: ClientOptions & { room: string; downloads: string }, audio: AudioPipeline): Promise<void> {
  const server = { host: options.host, port: options.port };
  let phase: 'handshake' | 'joined' | 'done' = 'handshake';
  const state = new ClientState(options.room);
  const timers = new Set<NodeJS.Timeout>();
  const after = (ms: number, action: () => void) => timers.add(setTimeout(action, ms));
  const input = options.commands === false ? undefined : createCommandInput();
  // The terminal's status line: who is here, who speaks, each transfer's progress (before the level meter, so an
  // 80-column terminal still shows it), and what we are doing.
  const transferFields = () => [...sender.describe(), ...receiver.describe()].map((transfer) => ` | ${transfer.field}`).join('');
  // A call comes first: "☎ Bob direct 01:23 | room lobby | ...".
  const callField = () => {
    const field = calls.status(call?.path.state ?? '');
    return field === '' ? '' : `${field} | `;
  };
  const display = options.display ?? createDisplay(() => `${callField()}${state.status}${transferFields()} | you: ${audio.status}`, input);
  // Progress goes to the status line on a terminal; elsewhere, plain lines at 25, 50 and 75 %.
  const onStatusLine = !(display instanceof PlainDisplay);
  const sender = new FileSender(socket, display, onStatusLine);
  const receiver = new FileReceiver(socket, display, options.downloads, options.noFiles ?? false, onStatusLine);
  const showTransfers = () => {
    const all = [...sender.describe(), ...receiver.describe()];
    if (all.length === 0) display.line('transfers: none');
    else display.list('transfers', all.map((transfer) => transfer.line));
  };
  /** Closes the datagram socket once it is open (it opens after WELCOME). */
  let closeUdp: (() => void) | null = null;
  const nameOf = (id: number) => state.users.find((user) => user.id === id)?.name ?? (calls.activeCall?.peer.id === id ? calls.activeCall.peer.name : `id ${id}`);
  /** Our UDP address as the server saw it (ADDRESS), once it said. */
  let publicAddress: UdpAddress | null = null;
  /** Datagrams from anyone but the server: a call's peer, or strangers (call-path.ts checks them). */
  const direct = new DirectDatagrams(options.blockDirect ?? false);
  /** The active call's path, and what the counters were when it started (for the end line). */
  let call: { path: CallPath; start: CallStart; sentBefore: number } | null = null;
  /** Sends a datagram to a call's peer from our one UDP socket; null until it is open (and with --tcp). */
  let udpSendTo: ((datagram: Buffer, to: UdpAddress) => void) | null = null;
  /** The peer of the call that ended last, until the guard second after it is over. */
  let lastPartner = { id: -1, until: 0 };
  /** The loss each path measures, for the encoder: the server path's (PONG) and the direct path's (the peer's probes). */
  const expectedLoss = { server: MIN_EXPECTED_LOSS_PERCENT, direct: MIN_EXPECTED_LOSS_PERCENT };
  const applyExpectedLoss = () => audio.expectLoss(call?.path.state === 'direct' ? expectedLoss.direct : expectedLoss.server);
  const showStats = () => {
    if (publicAddress) display.line(`your public UDP address: ${hostPort(publicAddress.address, publicAddress.port)}`);
    for (const line of statsLines(audio.udp?.stats ?? null, audio.receiver.speakerStats(), nameOf)) display.line(line);
    if (call) {
      const { state: path, probesSent, voiceSent, received, peerReceived, peerAddress } = call.path.stats;
      const where = peerAddress ? ` at ${hostPort(peerAddress.address, peerAddress.port)}` : '';
      display.line(`stats: call ${call.start.call} with ${call.start.peer.name}${where}: ${path}, sent ${probesSent} probes and ${voiceSent} voice packets directly, ` +
        `${peerReceived} of ours reached the peer, ${received} direct datagrams from the peer`);
    }
    if (!options.tcpOnly) display.line(`stats: ${direct.line}`);
  };
  /** The --call NAME waits for our UDP address to be known (so the callee gets it), then calls once. */
  let pendingCall = options.callName;
  const callWhenReady = () => {
    if (pendingCall === undefined || phase !== 'joined') return;
    const name = pendingCall;
    pendingCall = undefined;
    calls.call(name, CALL_LOOKUP_FOR_MS);
  };

  const calls = new CallState(
    {
      send: (request) => socket.write(callRequestFrame(request)),
      line: (text) => display.line(text),
      ring: ringBell,
      started: (start) => startCall(start),
      ended: (durationMs) => endCall(durationMs),
    },
    realScheduler,
    { relayOnly: options.relay ?? false, autoAccept: options.autoAccept ?? false },
  );

  /** CALL_START: the call's path starts (probes, or the relay at once), and only the peer is heard. */
  const startCall = (start: CallStart) => {
    const label = `call ${start.call} with ${start.peer.name}`;
    const relayBecause = options.relay ? '--relay' : options.tcpOnly ? '--tcp' : udpSendTo === null ? 'no UDP socket' : undefined;
    const path = new CallPath(
      { token: start.token, peerAddress: start.peerAddress, relayBecause },
      {
        sendTo: (datagram, to) => udpSendTo?.(datagram, to),
        pathChanged: (_state: CallPathState, line) => {
          display.line(`${label}: ${line}`);
          applyExpectedLoss();
        },
        voice: (sequence, packet) => audio.receiver.receive(start.peer.id, sequence, packet, 'udp'),
        expectedLoss: (percent) => {
          expectedLoss.direct = percent;
          applyExpectedLoss();
        },
      },
      realScheduler,
    );
    call = { path, start, sentBefore: audio.packetsSent };
    // Only the peer is heard from now on, in a stream of its own (whatever it said in our room before).
    audio.receiver.keepOnly(new Set());
    direct.call = path;
    audio.callPath = path;
    path.start();
  };

  /** CALL_END of an active call: the token is dead (its datagrams are dropped), the peer's stream ends. */
  const endCall = (durationMs: number): string => {
    if (call === null) return '';
    const { path, start, sentBefore } = call;
    const peerStats = audio.receiver.speakerStats().find((speaker) => speaker.id === start.peer.id);
    const summary = `${clockTime(durationMs)}, ${path.state}, sent ${audio.packetsSent - sentBefore} voice packets, ` +
      `heard ${peerStats?.received ?? 0}, ${peerStats?.concealed ?? 0} concealed`;
    path.stop();
    direct.call = null;
    audio.callPath = null;
    call = null;
    audio.receiver.removeSpeaker(start.peer.id); // nothing more is played from the call
    lastPartner = { id: start.peer.id, until: performance.now() + CALL_GUARD_MS };
    applyExpectedLoss();
    return summary;
  };

  // PRESENCE about the one we call or talk with tells us nothing (and comes around CALL_START and
  // CALL_END, in either order): not shown for them, nor in the guard second after the call.
  state.isCallPartner = (id) => calls.partner?.id === id || (id === lastPartner.id && performance.now() < lastPartner.until);
  audio.route = () => {
    if (call !== null) return call.path.state === 'direct' ? 'peer' : call.path.state === 'connecting' ? 'none' : 'server';
    return calls.roomVoiceAllowed ? 'server' : 'none';
  };
  /** What the room's news does to the voice streams: in a call, only the peer's stream is kept, whatever the room does (it may be in ours, and move out). */
  const roomStreams: SpeakerStreams = {
    removeSpeaker: (id) => {
      if (call === null || id !== call.start.peer.id) audio.receiver.removeSpeaker(id);
    },
    keepOnly: (ids) => audio.receiver.keepOnly(call === null ? ids : new Set([call.start.peer.id])),
  };
  audio.mayHear = (speaker) => (call === null ? true : speaker === call.start.peer.id);

  socket.setNoDelay(true); // send each voice frame at once (see server.ts)

  return new Promise<void>((resolve, reject) => {
    /** Ends the conversation, successfully or with a one-line error. */
    const finish = (error?: Error, { keepSocket = false } = {}) => {
      if (phase === 'done') return;
      phase = 'done';
      for (const timer of timers) clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (input) {
        input.close();
        // close() alone stops reading but leaves an open pipe holding the process: let it go.
        process.stdin.destroy();
      }
      audio.udp?.stop();
      call?.path.stop();
      calls.stop();
      closeUdp?.();
      audio.stop();
      sender.stop();
      // Part files of unfinished transfers are removed before we say we are done.
      void receiver.stop(error ? 'the session ended' : 'you left').finally(() => {
        display.close();
        if (error) {
          if (!keepSocket) socket.destroy();
          reject(error);
        } else {
          resolve();
        }
      });
    };

    /** Leaves cleanly: BYE, then close. */
    const leave = (why: string) => {
      if (phase === 'done') return;
      if (phase === 'joined') {
        calls.leave(); // "call 7 with Bob ended: you left (...)", before the totals
        socket.end(byeFrame());
        // The server closes after BYE; if it does not, we do not wait for ever.
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
        const { received, receivedBytes, concealed } = audio.receiver.counts;
        const heardKbps = received === 0 ? 0 : (receivedBytes * 8) / (received * FRAME_MS);
        display.line(
          `left (${why}): sent ${audio.packetsSent} voice packets (${audio.packetsSentByUdp} by UDP, ${audio.packetsSentDirect} directly to a call's peer; ${audio.sentKbps.toFixed(1)} kb/s of Opus while talking), ` +
            `heard ${received} (${heardKbps.toFixed(1)} kb/s per speaker; ${audio.receiver.counts.fecRecovered} frames rebuilt from FEC, ${concealed} concealed)`,
        );
        showStats();
        for (const transfer of [...sender.describe(), ...receiver.describe()]) display.line(`unfinished: ${transfer.line}`);
      } else {
        socket.destroy(); // not joined yet: nothing to say goodbye to
        display.line(`left (${why}) before the server answered`);
      }
      finish();
    };

    const welcomeTimer = setTimeout(
      () => finish(new UserError(`no WELCOME from the server within ${WELCOME_TIMEOUT_MS / 1000} seconds`)),
      WELCOME_TIMEOUT_MS,
    );
    timers.add(welcomeTimer);

    const onSignal = () => leave('interrupted');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);

    const commandTarget: CommandTarget = {
      state,
      audio,
      calls,
      display,
      isJoined: () => phase === 'joined',
      send: (frame) => socket.write(frame),
      leave,
      showStats,
      sendFile: (path, to) => {
        if (phase !== 'joined') return display.line('not sent: not in a room yet (wait for the server to answer)');
        sender.offer(path, to).catch((error: Error) => display.line(`not sent: ${error.message}`));
      },
      showTransfers,
      cancelTransfer: (id) => {
        const ids = [...sender.ids(), ...receiver.ids()];
        if (id === undefined && ids.length !== 1) {
          if (ids.length === 0) display.line('no transfer to cancel');
          else {
            display.line('which one? /cancel ID, with an id from this list:');
            showTransfers();
          }
          return;
        }
        const target = id ?? ids[0]!;
        if (!sender.cancel(target) && !receiver.cancel(target)) display.line(`no transfer ${target} (see /transfers)`);
      },
    };

    /** The UDP path: a socket to the server's udp_port (or --udp-via), PINGs, and PATH when our voice changes path. */
    const startUdp = (welcome: Welcome) => {
      const target = options.udpVia ?? { host: socket.remoteAddress ?? options.host, port: welcome.udpPort };
      const path = new UdpPath(
        welcome.token,
        {
          send: (datagram) => udpSend?.(datagram),
          pathChanged: (voicePath, line) => {
            if (phase !== 'joined') return;
            socket.write(pathFrame(voicePath));
            display.line(line);
            callWhenReady(); // the first PONG (or the fallback) comes with or after ADDRESS
          },
          voice: (speaker, sequence, packet) => {
            // A datagram can arrive after the LEFT (over TCP) that ended its speaker's stream: drop
            // it, or it would start a new stream for someone who is gone. In a call: the peer only.
            const known = call === null ? state.users.some((user) => user.id === speaker) : speaker === call.start.peer.id;
            if (known) audio.receiver.receive(speaker, sequence, packet, 'udp');
          },
          expectedLoss: (percent) => {
            expectedLoss.server = percent;
            applyExpectedLoss();
          },
        },
        realScheduler,
      );
      let udpSend: ((datagram: Buffer) => void) | null = null;
      audio.udp = path;
      openUdpSocket(target, (datagram) => path.receive(datagram), (datagram, from) => direct.receive(datagram, from)).then(
        (udp) => {
          if (phase === 'done') return udp.close();
          closeUdp = udp.close;
          udpSend = udp.send;
          udpSendTo = udp.sendTo;
          path.start();
        },
        (error: Error) => {
          display.line(`no UDP (${printable(error.message)}): voice over TCP`);
          callWhenReady();
        },
      );
    };

    const onInputEnd = () => {
      if (options.durationSeconds !== undefined) return; // stay until the duration is over
      leave('input ended'); // nothing comes back to wait for: nobody sends us our own voice
    };

    const onWelcome = (payload: Buffer) => {
      if (phase !== 'handshake') throw new ProtocolError('unexpected_message', 'a second WELCOME');
      let welcome;
      try {
        welcome = parseWelcome(payload);
      } catch (error) {
        if (!(error instanceof ProtocolError && error.code === ErrorCode.wrongProtocol)) throw error;
        // A server of stages 02-04 ignores our "protocol" and welcomes us: say goodbye before
        // sending it anything it would misread (it expects PCM where we would send Opus).
        socket.end(byeFrame());
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref(); // let BYE leave before closing
        finish(new UserError(error.message, 1), { keepSocket: true });
        return;
      }
      phase = 'joined';
      state.room = welcome.room;
      state.ownId = welcome.id;
      audio.receiver.ownId = welcome.id;
      clearTimeout(welcomeTimer);
      display.line(`connected to ${hostPort(options.host, options.port)} as ${welcome.name} (id ${welcome.id}, ${PROTOCOL})`);
      if (options.tcpOnly) display.line('--tcp: voice over the TCP connection only, no UDP');
      else startUdp(welcome);
      if (options.relay) display.line('--relay: every call goes through the server; your address is never given to a peer');
      if (options.blockDirect) display.line('--block-direct (a test hook): every direct datagram is dropped, as a filtering NAT would');
      // Silence never opens the gate: with it, nothing at all is sent (the user only listens).
      const sourceName = audio.source.description;
      const sending = audio.pushToTalk ? `${sourceName} as Opus at ${audio.bitrate / 1000} kb/s while push-to-talk is on`
        : sourceName === 'silence' ? 'nothing (silence never opens the voice gate)' : `${sourceName} as Opus at ${audio.bitrate / 1000} kb/s while the voice gate is open`;
      display.line(`sending ${sending}, playing the others' voices to ${audio.sink.description}`);
      if (input && process.stdin.isTTY) display.line(commandsHint(audio.pushToTalk));
      if (audio.pushToTalk) showPushToTalk(audio, display);
      if (options.durationSeconds !== undefined) after(options.durationSeconds * 1000, () => leave('--duration is over'));
      for (const { afterSeconds, command } of options.scriptedCommands ?? []) {
        after(afterSeconds * 1000, () => {
          display.line(`> ${command}`);
          runCommand(command, commandTarget);
        });
      }
      audio.start(socket, onInputEnd);
      for (const text of options.sayLines ?? []) runCommand(`/say ${text}`, commandTarget);
      for (const path of options.sendFiles ?? []) commandTarget.sendFile(path);
      if (options.tcpOnly) callWhenReady(); // no UDP address to wait for
    };

    /** ADDRESS, FOUND, INVITE, RINGING, CALL_START, CALL_END (and REFUSED of an INVITE or LOOKUP, from onChatOrFile). */
    const onCallMessage = (type: number, payload: Buffer) => {
      if (type === MessageType.address) {
        publicAddress = parseAddress(payload);
        display.line(`your public UDP address: ${hostPort(publicAddress.address, publicAddress.port)}`);
        callWhenReady();
      } else if (type === MessageType.found) {
        const found = parseFound(payload);
        calls.onFound(found.name, found.online, found.state);
      } else if (type === MessageType.invite) {
        const { call: id, from } = parseIncomingCall(payload);
        calls.onInvite(id, from);
      } else if (type === MessageType.ringing) {
        const { call: id, to } = parseRinging(payload);
        calls.onRinging(id, to);
      } else if (type === MessageType.callStart) {
        calls.onCallStart(parseCallStart(payload));
      } else if (type === MessageType.callEnd) {
        const end = parseCallEnd(payload);
        calls.onCallEnd(end.call, end.reason, end.by);
      } else {
        applyNews(state, type, payload, display, roomStreams); // PRESENCE
      }
    };

    /** TEXT, REFUSED and the transfers' messages: chat and files. */
    const onChatOrFile = (type: number, payload: Buffer) => {
      if (type === MessageType.text) {
        const { from, text, to } = parseServerText(payload);
        display.line(`${from.name}${to ? ` (to ${to.name})` : ''}: ${text}`); // the display makes it printable()
      } else if (type === MessageType.refused) {
        const { request, code, message } = parseRefused(payload);
        if (request === 'offer') sender.onRefused(code, message);
        else if (request === 'invite') calls.onInviteRefused(code, message);
        else if (request === 'lookup') calls.onLookupRefused(code, message);
        else display.line(`not sent: ${code} (${message})`);
      } else if (type === MessageType.offer) {
        receiver.onOffer(payload);
      } else if (type === MessageType.offered) {
        sender.onOffered(payload, state.room);
      } else if (type === MessageType.chunk) {
        receiver.onChunk(payload);
      } else if (type === MessageType.credit) {
        sender.onCredit(payload);
      } else {
        const end = parseTransferEnd(payload);
        if (!sender.onEnd(end)) receiver.onEnd(end); // one we are in neither any more: nothing to do
      }
    };

    const onError = (payload: Buffer) => {
      const { code, message } = parseError(payload);
      const what = phase === 'handshake' ? 'the server refused' : 'the server ended the session';
      // printable: this line goes to standard error directly, not through the display.
      finish(new UserError(`${what}: ${printable(message)} (${printable(code)})`));
    };

    const parser = new FrameParser({
      maxPayload: serverMessageLimit,
      onFrame: (type, payload) => {
        if (phase === 'done') return;
        if (type === MessageType.welcome) onWelcome(payload);
        else if (type === MessageType.error) onError(payload);
        else if (phase !== 'joined') throw new ProtocolError('unexpected_message', `message type ${type} before WELCOME`);
        else if (type === MessageType.voice) audio.hear(payload);
        else if (type >= MessageType.address) onCallMessage(type, payload);
        else if (type >= MessageType.text) onChatOrFile(type, payload);
        else applyNews(state, type, payload, display, roomStreams); // the only other types serverMessageLimit lets through
      },
    });

    socket.on('data', (chunk: Buffer) => {
      if (phase === 'done') return;
      try {
        parser.push(chunk);
      } catch (error) {
        if (error instanceof ProtocolError && phase === 'handshake' && isForeignFraming(error)) {
          // A stage 01 server answers HELLO with a line of text, whose first byte is no frame type.
          finish(new UserError(`this server speaks another stage's protocol (its first answer is not a WELCOME or ERROR frame: ${printable(error.message)}); this client needs ${PROTOCOL}`));
        } else if (error instanceof ProtocolError) {
          finish(new UserError(`the server sent something unexpected: ${printable(error.message)} (${error.code})`));
        } else {
          finish(error instanceof Error ? error : new Error(String(error)));
        }
      }
    });
    socket.on('end', () => {
      const when = phase === 'handshake' ? 'before answering HELLO' : 'without a word';
      finish(new UserError(`the server closed the connection ${when}`));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(new UserError(explainConnectError(error, server))));

    input?.on('line', (line) => {
      display.commandTyped();
      runCommand(line, commandTarget);
    });
    // The end of standard input is NOT a command to leave: scripts run clients with no input.

    socket.write(helloFrame(options.name, options.room));
  });
}

/** A framing error that says the peer does not speak this framing at all (rather than breaking it). */
function isForeignFraming(error: ProtocolError): boolean {
  return error.code === FRAMING_ERROR_CODES.UNKNOWN_TYPE || error.code === FRAMING_ERROR_CODES.FRAME_TOO_LARGE;
}
