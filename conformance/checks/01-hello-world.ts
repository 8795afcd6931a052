// Stage 01's checks: the hello-world protocol, asserted over raw sockets and through the
// client's command line. They use only the protocol in 01-hello-world/README.md, so they grade
// an implementation in any language.
import { expectDuration, expectWithinWindow, timingWindow } from '../harness/tolerance.ts';
import { expect, type Check, type CheckContext } from '../harness/checks.ts';
import { FakeServer } from '../harness/fake-server.ts';
import { runCommand } from '../harness/run-command.ts';
import { describeRun } from '../harness/running-client.ts';
import { WireClient } from '../harness/wire-client.ts';
import { errorLines, hasStackTrace } from '../harness/program-output.ts';

/** The documented greeting timeout, and the slack a busy machine needs. */
const GREETING_TIMEOUT_MS = 10_000;
/** The documented longest greeting line, "\n" included. */
const MAX_LINE_BYTES = 256;

async function connect({ server }: CheckContext): Promise<WireClient> {
  return WireClient.connect(server.host, server.port);
}

/** Sends one greeting and checks the exact answer, then that the server closes. */
async function expectAnswer(client: WireClient, name: string): Promise<void> {
  const line = await client.readLine(5_000, `the answer "OK Hello, ${name}!"`, 'answer with one line ending in "\\n"');
  expect(line === `OK Hello, ${name}!`, 'wrong answer to a greeting', {
    expected: JSON.stringify(`OK Hello, ${name}!\n`),
    actual: JSON.stringify(line),
    sent: client.sent,
    received: client.received,
    hint: 'the answer is "OK Hello, <name>!" followed by "\\n", with the name exactly as sent (UTF-8)',
  });
  await client.waitForClose(5_000, 'the server to close the connection after answering', 'one greeting per connection: close after the answer');
}

/** Sends `bytes` and expects "ERR <code> <reason>" and a close. */
async function expectError(context: CheckContext, bytes: Buffer | string, code: string, hint: string): Promise<void> {
  const client = await connect(context);
  client.send(bytes);
  const line = await client.readLine(5_000, `an error line "ERR ${code} <reason>"`, hint);
  expect(new RegExp(`^ERR ${code} \\S`).test(line), `expected error code ${code}`, {
    expected: `"ERR ${code} <reason>\\n"`,
    actual: JSON.stringify(line),
    sent: client.sent,
    received: client.received,
    hint,
  });
  await client.waitForClose(5_000, 'the server to close the connection after the error', 'close the connection after sending ERR');
}

function writeSlowly(client: WireClient, bytes: Buffer): Promise<void> {
  // One byte per write, each in its own event-loop turn, so they travel as separate TCP segments.
  return (async () => {
    for (const byte of bytes) {
      client.send(Buffer.of(byte));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
}



export const checks: Check[] = [
  {
    name: 'answers a greeting by name',
    async run(context) {
      const client = await connect(context);
      client.send('HELLO Ada\n');
      await expectAnswer(client, 'Ada');
    },
  },
  {
    name: 'answers a Unicode name byte for byte',
    async run(context) {
      const client = await connect(context);
      client.send('HELLO Zoë Ωmega 🎧\n');
      await expectAnswer(client, 'Zoë Ωmega 🎧');
    },
  },
  {
    name: 'accepts "\\r\\n" line endings',
    async run(context) {
      const client = await connect(context);
      client.send('HELLO Grace\r\n');
      await expectAnswer(client, 'Grace');
    },
  },
  {
    name: 'reads a greeting that arrives one byte at a time (TCP is a byte stream)',
    async run(context) {
      const client = await connect(context);
      await writeSlowly(client, Buffer.from('HELLO Linus 🐧\n'));
      await expectAnswer(client, 'Linus 🐧');
    },
  },
  {
    name: 'serves clients at once: a slow greeting does not hold up a fast one',
    async run(context) {
      const slow = await connect(context);
      slow.send('HELLO Slo'); // half a greeting, then the fast client goes
      const fast = await connect(context);
      fast.send('HELLO Fast\n');
      await expectAnswer(fast, 'Fast');
      expect(!slow.isClosed, 'the slow client was dropped while the fast one was served', {
        expected: 'the half-greeted connection stays open', sent: slow.sent, received: slow.received,
        hint: 'serve each connection independently; do not block on one client',
      });
      slow.send('w\n');
      await expectAnswer(slow, 'Slow');
    },
  },
  {
    name: 'serves 50 clients connected at the same time',
    async run(context) {
      const clients = await Promise.all(Array.from({ length: 50 }, () => connect(context)));
      clients.forEach((client, i) => client.send(`HELLO user${i}\n`));
      await Promise.all(clients.map((client, i) => expectAnswer(client, `user${i}`)));
    },
  },
  {
    name: 'refuses a line that is not a greeting (ERR bad_greeting)',
    run: (context) => expectError(context, 'HI there\n', 'bad_greeting', 'a line that does not start with "HELLO " gets "ERR bad_greeting <reason>"'),
  },
  {
    name: 'refuses an empty name (ERR bad_name)',
    run: (context) => expectError(context, 'HELLO \n', 'bad_name', 'names are 1 to 32 characters'),
  },
  {
    name: 'refuses a name of 33 characters (ERR bad_name)',
    run: (context) => expectError(context, `HELLO ${'x'.repeat(33)}\n`, 'bad_name', 'names are at most 32 characters (count characters, not bytes)'),
  },
  {
    name: 'accepts a name of 32 characters, counting characters and not bytes',
    async run(context) {
      const client = await connect(context);
      const name = 'é'.repeat(31) + '🎧'; // 32 characters, 66 bytes
      client.send(`HELLO ${name}\n`);
      await expectAnswer(client, name);
    },
  },
  {
    name: 'refuses a name with a terminal escape sequence (ERR bad_name)',
    run: (context) => expectError(context, 'HELLO \x1b[31mRed\n', 'bad_name', 'control characters (here ESC, 0x1b) are not allowed in names'),
  },
  {
    name: 'refuses a name with spaces at the ends (ERR bad_name)',
    run: (context) => expectError(context, 'HELLO  Ada \n', 'bad_name', 'a name must not start or end with a space'),
  },
  {
    name: 'refuses invalid UTF-8 (ERR bad_utf8)',
    run: (context) => expectError(context, Buffer.from([...Buffer.from('HELLO A'), 0xc3, 0x28, 0x0a]), 'bad_utf8', 'decode the line as UTF-8 strictly; 0xc3 0x28 is not valid UTF-8'),
  },
  {
    name: `refuses a greeting past ${MAX_LINE_BYTES} bytes as soon as byte ${MAX_LINE_BYTES + 1} arrives (ERR too_long); a line of ${MAX_LINE_BYTES} is read whole`,
    async run(context) {
      // 257 bytes and no newline: the server must not wait for more (or buffer forever).
      await expectError(context, `HELLO ${'a'.repeat(MAX_LINE_BYTES + 1 - 6)}`, 'too_long', `the greeting limit is ${MAX_LINE_BYTES} bytes, "\\n" included: answer as soon as byte ${MAX_LINE_BYTES + 1} arrives without a newline`);
      // A line of exactly 256 bytes fits: its (too long) name is judged, so the answer is bad_name.
      await expectError(context, `HELLO ${'a'.repeat(MAX_LINE_BYTES - 7)}\n`, 'bad_name', `the greeting limit is ${MAX_LINE_BYTES} bytes, "\\n" included: a line of ${MAX_LINE_BYTES} bytes is read whole (and its 249-character name refused)`);
    },
  },
  {
    name: `drops a client that sends nothing, after about ${GREETING_TIMEOUT_MS / 1000} s (ERR timeout)`,
    async run(context) {
      const client = await connect(context);
      const started = Date.now();
      const window = timingWindow(GREETING_TIMEOUT_MS);
      const line = await expectWithinWindow(client.readLine(window.latestMs, 'an error line "ERR timeout <reason>"', `close silent connections after ${GREETING_TIMEOUT_MS / 1000} s`), window, 'the greeting timeout', 'ERR timeout');
      const waited = Date.now() - started;
      expect(/^ERR timeout \S/.test(line), 'expected error code timeout', {
        expected: '"ERR timeout <reason>\\n"', actual: JSON.stringify(line), received: client.received,
        hint: `a client that has not sent a whole greeting within ${GREETING_TIMEOUT_MS / 1000} s gets "ERR timeout <reason>"`,
      });
      expectDuration(waited, window, 'the greeting timeout', 'ERR timeout', 'people type greetings by hand with nc: give them the documented time, from the moment the connection is accepted');
      await client.waitForClose(5_000);
    },
  },
  {
    name: 'keeps serving others after garbage and abrupt disconnects',
    async run(context) {
      const garbage = await connect(context);
      garbage.send(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a]));
      const vanishing = await connect(context);
      vanishing.send('HELLO Van');
      vanishing.reset(); // gone mid-greeting, with a TCP reset
      const client = await connect(context);
      client.send('HELLO Survivor\n');
      await expectAnswer(client, 'Survivor');
      garbage.destroy();
    },
  },
  {
    name: 'client: sends "HELLO <name>\\n", prints the answer and exits 0',
    subject: 'client',
    async run(context) {
      const fake = await FakeServer.start();
      try {
        const run = runCommand(context.clientCommand, ['--name', 'Zoë 🎧', '--host', '127.0.0.1', '--port', String(fake.port)], { timeoutMs: 20_000 });
        const connection = await fake.connection();
        const greeting = await connection.readLine(10_000, 'the greeting "HELLO Zoë 🎧"');
        expect(greeting === 'HELLO Zoë 🎧', 'the client sent a wrong greeting', {
          expected: '"HELLO Zoë 🎧\\n" (UTF-8)', received: connection.received, hint: 'send "HELLO " + the --name value + "\\n"',
        });
        connection.send('OK Hello, Zoë 🎧!\n');
        connection.end();
        const result = await run;
        expect(result.exitCode === 0 && result.stdout.includes('Hello, Zoë 🎧!'), 'the client did not print the answer and exit 0', {
          expected: 'the answer "Hello, Zoë 🎧!" on standard output, exit code 0', actual: describeRun(result),
          hint: 'print the text after "OK " and exit 0',
        });
      } finally {
        await fake.close();
      }
    },
  },
  {
    name: 'client: a refusal (ERR) gives one line on stderr and a non-zero exit',
    subject: 'client',
    async run(context) {
      const fake = await FakeServer.start();
      try {
        const run = runCommand(context.clientCommand, ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(fake.port)], { timeoutMs: 20_000 });
        const connection = await fake.connection();
        await connection.readLine(10_000, 'a greeting');
        connection.send('ERR bad_name this name is not allowed\n');
        connection.end();
        const result = await run;
        const lines = errorLines(result.stderr);
        expect(result.exitCode !== 0 && lines.length === 1 && lines[0]!.includes('this name is not allowed') && !hasStackTrace(result.stderr), 'the client did not report the refusal in one line', {
          expected: 'a non-zero exit and one line on standard error that includes the server\'s reason', actual: describeRun(result),
          hint: 'on "ERR <code> <reason>" print the reason in one line and exit non-zero; no stack trace',
        });
      } finally {
        await fake.close();
      }
    },
  },
  {
    name: 'client: a refused connection gives one line and a non-zero exit',
    subject: 'client',
    async run(context) {
      const fake = await FakeServer.start();
      const port = fake.port;
      await fake.close(); // nothing listens there now
      const result = await runCommand(context.clientCommand, ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(port)], { timeoutMs: 20_000 });
      expect(result.exitCode !== 0 && /refused/i.test(result.stderr) && !hasStackTrace(result.stderr), 'the client did not explain a refused connection', {
        expected: 'a non-zero exit and a line saying the connection was refused', actual: describeRun(result),
        hint: 'catch the connection error and print one readable line',
      });
    },
  },
  {
    name: 'client and server: the client greets the server under test by name',
    subject: 'client',
    async run(context) {
      const result = await runCommand(context.clientCommand, ['--name', 'Ada Lovelace', '--host', context.server.host, '--port', String(context.server.port)], { timeoutMs: 20_000 });
      expect(result.exitCode === 0 && result.stdout.includes('Hello, Ada Lovelace!'), 'the client could not greet the server', {
        expected: '"Hello, Ada Lovelace!" printed, exit code 0', actual: describeRun(result),
        hint: 'run both by hand: npm run stage:01 -- server, then npm run stage:01 -- client --name "Ada Lovelace"',
      });
    },
  },
];
