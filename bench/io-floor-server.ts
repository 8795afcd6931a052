// The I/O floor: what a server that speaks stage 04's framing but does NO mixing costs on this
// machine. It answers HELLO with WELCOME, reads and parses every frame, and every 20 ms writes
// one ready-made 1920-byte AUDIO frame (silence, the same Buffer every time) to every user.
// `npm run bench -- --stage floor ...` measures it like the real server: whatever the stage 04
// server costs above this is mixing, bookkeeping and allocation; this part is sockets and the kernel.
import { createServer, type Socket } from 'node:net';
import { FrameClock } from '#shared/audio/frame-clock.ts';
import { FRAME_BYTES } from '#shared/audio/format.ts';
import { FrameParser } from '#shared/framing/frame-parser.ts';
import { listenAndAnnounce } from '#shared/listen.ts';
import { audioFrame, clientMessageLimit, MessageType, parseHello, TICK_MS, welcomeFrame } from '../04-rooms/protocol.ts';

const users = new Set<Socket>();
const silence = audioFrame(Buffer.alloc(FRAME_BYTES));

const server = createServer((socket) => {
  socket.setNoDelay(true);
  const parser = new FrameParser({
    maxPayload: clientMessageLimit,
    onFrame: (type, payload) => {
      if (type === MessageType.hello) {
        const { name, room } = parseHello(payload);
        socket.write(welcomeFrame(name, room));
        users.add(socket);
      }
      // AUDIO is parsed and dropped; BYE, JOIN and LIST_ROOMS are ignored.
    },
  });
  socket.on('data', (chunk: Buffer) => parser.push(chunk));
  socket.on('error', () => {});
  socket.on('close', () => users.delete(socket));
});

new FrameClock(() => {
  for (const socket of users) socket.write(silence);
}, { periodMs: TICK_MS }).start();

await listenAndAnnounce(server, process.argv[2] ?? '127.0.0.1', Number(process.argv[3] ?? 0));
