// Stage 04 client: joins a room of the server with a name, sends voice frames from the --input
// while the voice gate (or push-to-talk) is open, writes the mix of the room's other members to
// the --output, shows who is in the room and who is speaking, lists the rooms and moves between
// them (the commands rooms and join ROOM), until the user leaves.
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import { openSink, openSource } from '#shared/audio/open-audio.ts';
import { AudioDeviceUnavailable, AudioFormatError, type AudioSink, type AudioSource } from '#shared/audio/types.ts';
import { connect } from '#shared/connect.ts';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { explainConnectError } from '#shared/network-errors.ts';
import { ProtocolError } from '#shared/protocol-error.ts';
import { UserError } from '#shared/user-error.ts';
import { nameProblem } from '#shared/user-name.ts';
import { DEFAULT_GATE, VoiceGate, type VoiceGateOptions } from '#shared/voice-gate.ts';
import {
  audioFrame,
  byeFrame,
  helloFrame,
  joinFrame,
  listRoomsFrame,
  MAX_QUEUED_AUDIO_BYTES,
  MessageType,
  parseError,
  parseJoinRefused,
  parseNameList,
  parseRooms,
  parseUserEvent,
  parseUsersRoom,
  parseWelcome,
  roomProblem,
  serverMessageLimit,
} from './protocol.ts';
import { type ClientDisplay, createDisplay, printable } from './terminal-display.ts';

const WELCOME_TIMEOUT_MS = 10_000;
/** After BYE, how long the server gets to close its side before we cut the connection. */
const CLOSE_GRACE_MS = 1_000;
/** Longest hang-over accepted on the command line: past 10 s the gate hardly ever closes. */
const MAX_HANGOVER_MS = 10_000;
/** The room of a client that names none. */
export const DEFAULT_ROOM = 'lobby';

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
  /** Where news and the status go (default: a terminal display, or plain lines when not a terminal). */
  display?: ClientDisplay;
}

/** Joins, talks until the user leaves, and resolves; throws UserError on refusal or failure. */
export async function runClient(options: ClientOptions): Promise<void> {
  const problem = nameProblem(options.name);
  if (problem) throw new UserError(`invalid --name: ${problem}`, 2);
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

  // Audio first: a missing sound card is reported before we bother the server.
  const source = await openAudio(() => openSource(options.input));
  const sink = await openAudio(() => openSink(options.output)).catch(async (error: unknown) => {
    await source.stop();
    throw error;
  });
  try {
    const socket = await connect(options.host, options.port);
    await talk(socket, { ...options, room }, new VoiceGate(gate), source, sink);
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

/** "Ada, Bob", or "(nobody)". (The display makes names safe to print, not this.) */
function nameList(names: readonly string[], mark: (name: string) => string = () => ''): string {
  return names.length === 0 ? '(nobody)' : names.map((name) => name + mark(name)).join(', ');
}

/** The conversation on one connection: HELLO, WELCOME, USERS, then audio both ways, news and moves until BYE. */
function talk(socket: Socket, options: ClientOptions & { room: string }, gate: VoiceGate, source: AudioSource, sink: AudioSink): Promise<void> {
  const server = { host: options.host, port: options.port };
  let state: 'handshake' | 'joined' | 'done' = 'handshake';
  let muted = false;
  let pushToTalkOn = false; // push-to-talk starts off: nobody is on the air by surprise
  let talking = false;
  let room = options.room; // the room we are in: the server's word (WELCOME, USERS) once it speaks
  let users: string[] = [];
  let speakers = new Set<string>();
  let framesSent = 0;
  let framesHeard = 0;
  const timers = new Set<NodeJS.Timeout>();
  const after = (ms: number, action: () => void) => timers.add(setTimeout(action, ms));
  const commands = options.commands === false ? undefined : createInterface({ input: process.stdin });

  /** The terminal's status line: who is here, who speaks, and what we are doing. */
  const status = () => {
    const you = muted
      ? 'muted'
      : options.pushToTalk && !pushToTalkOn
        ? 'push-to-talk off (Enter to talk)'
        : `${talking ? 'talking' : 'silent'}, level ${Math.max(-99, Math.round(gate.levelDb))} dBFS`;
    return `room ${room} | users: ${nameList(users, (name) => (speakers.has(name) ? '*' : ''))}  (*speaking) | you: ${you}`;
  };
  const display = options.display ?? createDisplay(status);

  socket.setNoDelay(true); // send each voice frame at once (see server.ts)

  return new Promise<void>((resolve, reject) => {
    /** Ends the conversation, successfully or with a one-line error. */
    const finish = (error?: Error) => {
      if (state === 'done') return;
      state = 'done';
      for (const timer of timers) clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (commands) {
        commands.close();
        // close() alone stops reading but leaves an open pipe holding the process: let it go.
        process.stdin.destroy();
      }
      display.close();
      void source.stop();
      if (error) {
        socket.destroy();
        reject(error);
      } else {
        resolve();
      }
    };

    /** Leaves cleanly: BYE, then close. */
    const leave = (why: string) => {
      if (state === 'done') return;
      if (state === 'joined') {
        socket.end(byeFrame());
        // The server closes after BYE; if it does not, we do not wait for ever.
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
        display.line(`left (${why}): sent ${framesSent} frames, heard ${framesHeard}`);
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

    const sendFrame = (frame: Buffer) => {
      if (state !== 'joined') return;
      // The gate hears every frame, even muted or on push-to-talk, so the level shown stays live.
      const voice = gate.accept(frame);
      talking = !muted && (options.pushToTalk ? pushToTalkOn : voice);
      if (!talking) return; // silence is not sent: the server mixes only who speaks
      // A server that stops reading must not make us buffer voice without bound either.
      if (socket.writableLength > MAX_QUEUED_AUDIO_BYTES) return;
      socket.write(audioFrame(frame));
      framesSent++;
    };

    const onInputEnd = () => {
      if (options.durationSeconds !== undefined) return; // stay until the duration is over
      leave('input ended'); // nothing comes back to wait for: the mix never holds our own voice
    };

    const showPushToTalk = () =>
      display.line(pushToTalkOn ? 'push-to-talk: on (sending; Enter to stop)' : 'push-to-talk: off (press Enter to talk)');

    const onWelcome = (payload: Buffer) => {
      if (state !== 'handshake') throw new ProtocolError('unexpected_message', 'a second WELCOME');
      const welcome = parseWelcome(payload);
      state = 'joined';
      room = welcome.room;
      clearTimeout(welcomeTimer);
      display.line(`connected to ${options.host}:${options.port} as ${welcome.name}`);
      // Silence never opens the gate: with it, nothing at all is sent (the user only listens).
      const gated = source.description === 'silence' ? 'nothing (silence never opens the voice gate)' : `${source.description} while the voice gate is open`;
      display.line(`sending ${options.pushToTalk ? `${source.description} while push-to-talk is on` : gated}, playing the mix to ${sink.description}`);
      if (commands && process.stdin.isTTY) {
        display.line(`type mute, unmute, users, rooms, join ROOM or exit (or press Ctrl+C)${options.pushToTalk ? '; press Enter to turn push-to-talk on or off' : ''}`);
      }
      if (options.pushToTalk) showPushToTalk();
      if (options.durationSeconds !== undefined) after(options.durationSeconds * 1000, () => leave('--duration is over'));
      for (const { afterSeconds, command } of options.scriptedCommands ?? []) {
        after(afterSeconds * 1000, () => {
          display.line(`> ${command}`);
          runCommand(command);
        });
      }
      source.start(sendFrame, onInputEnd);
    };

    const onAudio = (payload: Buffer) => {
      if (state !== 'joined') throw new ProtocolError('unexpected_message', 'AUDIO before WELCOME');
      if (payload.length !== FRAME_BYTES) {
        throw new ProtocolError('bad_audio_size', `AUDIO of ${payload.length} bytes; expected ${FRAME_BYTES}`);
      }
      framesHeard++;
      // Copied: the payload may be a view into a larger network chunk, and a sink may keep it.
      sink.write(Buffer.from(payload));
    };

    /** Where we are and who is with us: on USERS and on the command users. */
    const showRoom = () => {
      display.line(`room: ${room}`);
      display.line(`users: ${nameList(users)}`);
    };

    /** USERS, JOINED, LEFT and SPEAKING: the news about the others in our room; JOIN_REFUSED and ROOMS: answers. */
    const onNews = (type: number, payload: Buffer) => {
      if (state !== 'joined') throw new ProtocolError('unexpected_message', `message type ${type} before WELCOME`);
      if (type === MessageType.users) {
        // After WELCOME and after each move (or a join of the room we are in): the room is the server's word.
        const newRoom = parseUsersRoom(payload);
        users = parseNameList(payload, 'users');
        if (newRoom !== room) speakers = new Set(); // who spoke over there says nothing about here
        room = newRoom;
        showRoom();
      } else if (type === MessageType.joinRefused) {
        const { code, message } = parseJoinRefused(payload);
        display.line(`join refused: ${message} (${code})`); // and we stay where we are
      } else if (type === MessageType.rooms) {
        display.list('rooms', parseRooms(payload).map((entry) => `${entry.room} (${entry.users})`));
      } else if (type === MessageType.joined) {
        const { name } = parseUserEvent(payload);
        if (!users.includes(name)) users.push(name);
        display.line(`joined: ${name}`);
      } else if (type === MessageType.left) {
        const { name, reason } = parseUserEvent(payload);
        users = users.filter((user) => user !== name);
        speakers.delete(name);
        display.line(`left: ${name}${reason === undefined ? '' : ` (${reason === 'moved' ? 'moved to another room' : reason})`}`);
      } else {
        speakers = new Set(parseNameList(payload, 'speakers'));
        display.line(`speaking: ${nameList([...speakers])}`);
      }
    };

    const onError = (payload: Buffer) => {
      const { code, message } = parseError(payload);
      const what = state === 'handshake' ? 'the server refused' : 'the server ended the session';
      // printable: this line goes to standard error directly, not through the display.
      finish(new UserError(`${what}: ${printable(message)} (${printable(code)})`));
    };

    const parser = new FrameParser({
      maxPayload: serverMessageLimit,
      onFrame: (type, payload) => {
        if (state === 'done') return;
        if (type === MessageType.welcome) onWelcome(payload);
        else if (type === MessageType.audio) onAudio(payload);
        else if (type === MessageType.error) onError(payload);
        else onNews(type, payload); // the only other types serverMessageLimit lets through
      },
    });

    socket.on('data', (chunk: Buffer) => {
      if (state === 'done') return;
      try {
        parser.push(chunk);
      } catch (error) {
        if (error instanceof ProtocolError) {
          finish(new UserError(`the server sent something unexpected: ${printable(error.message)} (${error.code})`));
        } else {
          finish(error instanceof Error ? error : new Error(String(error)));
        }
      }
    });
    socket.on('end', () => {
      const when = state === 'handshake' ? 'before answering HELLO' : 'without a word';
      finish(new UserError(`the server closed the connection ${when}`));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(new UserError(explainConnectError(error, server))));

    /** `join ROOM`: the id is checked here first, so a typo is explained without a round trip. */
    const requestJoin = (target: string) => {
      const problem = roomProblem(target);
      if (target === '') display.line('join which room? type join ROOM, for example join game-42');
      else if (problem) display.line(`cannot join "${target}": ${problem}`);
      else if (state !== 'joined') display.line('not in a room yet: wait for the server to answer');
      else socket.write(joinFrame(target)); // the answer is USERS for the new room, or JOIN_REFUSED
    };

    /** One line of standard input (or of the script). */
    const runCommand = (line: string) => {
      // The command word is case-insensitive; its argument (a room id) is not.
      const [word = '', ...rest] = line.trim().split(/\s+/);
      const command = word.toLowerCase();
      if (command === 'exit' || command === 'quit') {
        leave('exit');
      } else if (command === 'mute' || command === 'unmute') {
        muted = command === 'mute';
        display.line(muted ? 'muted: sending nothing' : 'unmuted');
      } else if (command === 'users') {
        showRoom();
      } else if (command === 'rooms') {
        if (state === 'joined') socket.write(listRoomsFrame()); // the answer is ROOMS
        else display.line('not in a room yet: wait for the server to answer');
      } else if (command === 'join') {
        requestJoin(rest.join(' '));
      } else if (command === '' && options.pushToTalk) {
        pushToTalkOn = !pushToTalkOn;
        showPushToTalk();
      } else if (command !== '') {
        display.line(`commands: mute, unmute, users, rooms, join ROOM, exit${options.pushToTalk ? ', and Enter for push-to-talk' : ''}`);
      }
    };
    commands?.on('line', (line) => {
      display.commandTyped();
      runCommand(line);
    });
    // The end of standard input is NOT a command to leave: scripts run clients with no input.

    socket.write(helloFrame(options.name, options.room));
  });
}
