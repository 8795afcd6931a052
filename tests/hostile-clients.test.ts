// The clients of stages 02-08 (the references, or CLIENT_CMD) against a server that vanishes or
// turns hostile mid-session (conformance/hostile/client-cases.ts): first proof that the client
// joined (after WELCOME it sent voice, or 06 on a PING with WELCOME's token), then one line on
// standard error, a non-zero exit, no stack trace, and no escape sequence from the server printed
// to the user's terminal. The last test shows that guard failing a client that refuses WELCOME.
// tests/independent-clients-hostile.test.ts holds the independent Python clients to the same cases.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import t from 'tap';
import { clientCommand } from '../conformance/harness/checks.ts';
import { clientCases, oneLineFailureProblem, runClientCase } from '../conformance/hostile/client-cases.ts';
import { wireStages } from '../conformance/stages.ts';
import { expectCleanFailuresAgainstHostileServers } from './support/hostile-clients.ts';

for (const { id, folder, wire } of wireStages) {
  t.test(`stage ${id} client`, async (t) => {
    await expectCleanFailuresAgainstHostileServers(t, clientCommand(folder), wire);
  });
}

/**
 * A client that never joins: it sends HELLO (with --talk-first, one AUDIO frame right behind it,
 * before any WELCOME), and on the server's first bytes prints one error line and exits 1. Before
 * the guard, such a client passed every case.
 */
const REFUSING_CLIENT = `
import { connect } from 'node:net';
const frame = (type, payload) => { const header = Buffer.alloc(5); header[0] = type; header.writeUInt32BE(payload.length, 1); return Buffer.concat([header, payload]); };
const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
const socket = connect(port, '127.0.0.1', () => {
  const hello = frame(0x01, Buffer.from(JSON.stringify({ name: 'Ada', room: 'lobby', protocol: 'voice-chat/06' })));
  socket.write(process.argv.includes('--talk-first') ? Buffer.concat([hello, frame(0x03, Buffer.alloc(1920))]) : hello);
});
socket.once('data', () => { console.error('error: the server sent a WELCOME this client does not accept'); process.exit(1); });
`;

t.test('the guard: a client that refuses every WELCOME is caught in every case, not passed as a clean failure', async (t) => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'refusing-client-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = joinPath(dir, 'refusing-client.mjs');
  writeFileSync(script, REFUSING_CLIENT);
  const expected = { '02': /sent no AUDIO \(0x03\) before it closed the connection/, '06': /sent no datagram carrying WELCOME's token to its udp_port \(a PING\) and no VOICE \(0x03\) over TCP before it closed the connection/ };
  for (const [id, proof] of Object.entries(expected)) {
    const { wire } = wireStages.find((stage) => stage.id === id)!;
    for (const talkFirst of [false, true]) {
      const command = `node ${script}${talkFirst ? ' --talk-first' : ''}`;
      const runs = await Promise.all(clientCases.map((clientCase) => runClientCase(command, wire, clientCase)));
      clientCases.forEach((clientCase, i) => {
        const { result, handshakeProblem } = runs[i]!;
        const label = `stage ${id}${talkFirst ? ', AUDIO before WELCOME' : ''}, ${clientCase.name}`;
        t.equal(oneLineFailureProblem(result), null, `${label}: the run is a clean one-line failure (what used to pass)`, { stderr: result.stderr });
        t.match(handshakeProblem, /^the client never got past the handshake: /, `${label}: the guard says the client never joined`);
        t.match(handshakeProblem, proof, `${label}: and names what a joined client sends`);
      });
    }
  }
});
