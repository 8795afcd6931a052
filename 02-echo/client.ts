// Stage 02 client: joins the echo server with a name, sends voice frames from the --input and
// writes every frame the server sends back to the --output, until the user leaves.
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
import { nameProblem, printable } from '#shared/user-name.ts';
import {
  audioFrame,
  byeFrame,
  ErrorCode,
  helloFrame,
  MAX_QUEUED_ECHO_BYTES,
  MessageType,
  parseError,
  parseWelcome,
  PROTOCOL,
  serverMessageLimit,
} from './protocol.ts';

const WELCOME_TIMEOUT_MS = 10_000;
/** When a file input ends, how long to wait for the echoes still on their way. */
const LAST_ECHOES_WAIT_MS = 1_000;
/** After BYE, how long the server gets to close its side before we cut the connection. */
const CLOSE_GRACE_MS = 1_000;

export interface ClientOptions {
  name: string;
  host: string;
  port: number;
  /** mic | tone:HZ | silence | FILE.wav */
  input: string;
  /** speaker | null | FILE.wav */
  output: string;
  /** Leave after this many seconds of talking; without it, run until `exit`, Ctrl+C or the end of a file input. */
  durationSeconds?: number;
  /** Read the commands mute, unmute and exit from standard input (default true). */
  commands?: boolean;
}

/** Joins, echoes until the user leaves, and resolves; throws UserError on refusal or failure. */
export async function runClient(options: ClientOptions): Promise<void> {
  const problem = nameProblem(options.name);
  if (problem) throw new UserError(`invalid --name: ${problem}`, 2);
  const { durationSeconds } = options;
  if (durationSeconds !== undefined && !(durationSeconds > 0)) {
    throw new UserError(`invalid --duration ${durationSeconds}: give a number of seconds above 0`, 2);
  }

  // Audio first: a missing sound card is reported before we bother the server.
  const source = await openAudio(() => openSource(options.input));
  const sink = await openAudio(() => openSink(options.output)).catch(async (error: unknown) => {
    await source.stop();
    throw error;
  });
  try {
    const socket = await connect(options.host, options.port);
    await talk(socket, options, source, sink);
  } finally {
    await source.stop();
    await sink.close(); // a WAV file is complete, the speaker has played what it holds
  }
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

/** The conversation on one connection: HELLO, WELCOME, then audio both ways until BYE. */
function talk(socket: Socket, options: ClientOptions, source: AudioSource, sink: AudioSink): Promise<void> {
  const server = { host: options.host, port: options.port };
  let state: 'handshake' | 'joined' | 'done' = 'handshake';
  let muted = false;
  let inputEnded = false;
  let framesSent = 0;
  let framesHeard = 0;
  const timers = new Set<NodeJS.Timeout>();
  const after = (ms: number, action: () => void) => timers.add(setTimeout(action, ms));
  const commands = options.commands === false ? undefined : createInterface({ input: process.stdin });

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
        console.log(`left (${why}): sent ${framesSent} frames, heard ${framesHeard} back`);
      } else {
        socket.destroy(); // not joined yet: nothing to say goodbye to
        console.log(`left (${why}) before the server answered`);
      }
      finish();
    };

    const welcomeTimer = setTimeout(
      () => finish(new UserError(`no WELCOME from the server within ${WELCOME_TIMEOUT_MS / 1000} seconds: is it a server of this stage? (one of stage 01 waits for a line of text)`)),
      WELCOME_TIMEOUT_MS,
    );
    timers.add(welcomeTimer);

    const onSignal = () => leave('interrupted');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);

    const sendFrame = (frame: Buffer) => {
      if (state !== 'joined' || muted) return;
      // A server that stops reading must not make us buffer voice without bound either.
      if (socket.writableLength > MAX_QUEUED_ECHO_BYTES) return;
      socket.write(audioFrame(frame));
      framesSent++;
    };

    const onInputEnd = () => {
      if (options.durationSeconds !== undefined) return; // stay until the duration is over
      inputEnded = true;
      if (framesHeard >= framesSent) leave('input ended');
      else after(LAST_ECHOES_WAIT_MS, () => leave('input ended'));
    };

    const onWelcome = (payload: Buffer) => {
      if (state !== 'handshake') throw new ProtocolError('unexpected_message', 'a second WELCOME');
      const { name } = parseWelcome(payload);
      state = 'joined';
      clearTimeout(welcomeTimer);
      console.log(`connected to ${options.host}:${options.port} as ${printable(name)}`);
      console.log(`sending ${source.description}, playing the echo to ${sink.description}`);
      if (commands && process.stdin.isTTY) console.log('type mute, unmute or exit (or press Ctrl+C)');
      if (options.durationSeconds !== undefined) after(options.durationSeconds * 1000, () => leave('--duration is over'));
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
      if (inputEnded && framesHeard >= framesSent) leave('input ended');
    };

    const onError = (payload: Buffer) => {
      const { code, message } = parseError(payload);
      const what = state === 'handshake' ? 'the server refused' : 'the server ended the session';
      finish(new UserError(`${what}: ${printable(message)} (${printable(code)})`));
    };

    const parser = new FrameParser({
      maxPayload: serverMessageLimit,
      onFrame: (type, payload) => {
        if (state === 'done') return;
        if (type === MessageType.welcome) onWelcome(payload);
        else if (type === MessageType.audio) onAudio(payload);
        else onError(payload); // the only other type serverMessageLimit lets through
      },
    });

    socket.on('data', (chunk: Buffer) => {
      if (state === 'done') return;
      try {
        parser.push(chunk);
      } catch (error) {
        if (error instanceof ProtocolError) {
          finish(new UserError(describeServerMistake(error, state === 'handshake')));
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

    commands?.on('line', (line) => {
      const command = line.trim().toLowerCase();
      if (command === 'exit' || command === 'quit') {
        leave('exit');
      } else if (command === 'mute' || command === 'unmute') {
        muted = command === 'mute';
        console.log(muted ? 'muted: sending nothing' : 'unmuted');
      } else if (command !== '') {
        console.log('commands: mute, unmute, exit');
      }
    });
    // The end of standard input is NOT a command to leave: scripts run clients with no input.

    socket.write(helloFrame(options.name));
  });
}

/**
 * One line about a server that broke this stage's protocol. Every stage listens on port 8888 by
 * default, so the usual cause is a server of another stage: its WELCOME names another protocol, or
 * its first answer is a frame this stage does not have (a stage 01 server answers in text).
 */
function describeServerMistake(error: ProtocolError, beforeWelcome: boolean): string {
  if (error.code === ErrorCode.wrongProtocol) return printable(error.message);
  if (beforeWelcome && error.code === ErrorCode.unknownType) {
    return `this server speaks another stage's protocol: its first answer is not ${PROTOCOL} (${printable(error.message)})`;
  }
  return `the server sent something unexpected: ${printable(error.message)} (${error.code})`;
}
