// The shared command line and error reporting: defaults, port parsing, the ready line,
// and one-line errors for the failures people meet (port in use, refused, host not found).
import t from 'tap';
import { createServer } from 'node:net';
import { defaultPort, DEFAULT_PORT, DEFAULT_SERVER_HOST, parsePort } from '#shared/cli.ts';
import { hostPort } from '#shared/host-port.ts';
import { explainConnectError } from '#shared/network-errors.ts';
import { connect } from '#shared/connect.ts';
import { listen, readyLine } from '#shared/listen.ts';
import { UserError } from '#shared/user-error.ts';
import { nameProblem, printable } from '#shared/user-name.ts';
import { runCommand } from '../conformance/harness/run-command.ts';
import { repoRoot } from '../conformance/harness/checks.ts';
import { errorLines, STACK_TRACE } from '../conformance/harness/program-output.ts';

const stage01 = `"${process.execPath}" --import tsx 01-hello-world/main.ts`;

t.test('ports: PORT from the environment, else 8888; 0 allowed; nonsense refused', async (t) => {
  t.equal(DEFAULT_PORT, 8888);
  t.equal(defaultPort({}), 8888);
  t.equal(defaultPort({ PORT: '9000' }), 9000);
  t.equal(parsePort('0'), 0);
  t.equal(parsePort(65535), 65535);
  for (const bad of ['', 'abc', '-1', '65536', '80.5', '8o8o']) {
    t.throws(() => parsePort(bad), /invalid port/, `"${bad}" is refused`);
  }
  t.throws(() => defaultPort({ PORT: 'x' }), /invalid PORT "x" in the environment/);
});

t.test('the ready line names the real address, IPv6 in brackets', async (t) => {
  t.equal(readyLine({ host: '127.0.0.1', port: 8888 }), 'listening on 127.0.0.1:8888');
  t.equal(readyLine({ host: '::1', port: 40000 }), 'listening on [::1]:40000');
  t.equal(readyLine({ host: '::', port: 40000 }), 'listening on [::]:40000 (every IPv4 and IPv6 address of this machine)');
});

t.test('addresses in logs: IPv6 in brackets, IPv4 peers of a dual-stack server as plain IPv4', async (t) => {
  t.equal(hostPort('::1', 50000), '[::1]:50000');
  t.equal(hostPort('fe80::1%eth0', 8888), '[fe80::1%eth0]:8888');
  t.equal(hostPort('::ffff:192.0.2.7', 50000), '192.0.2.7:50000');
  t.equal(hostPort('192.0.2.7', 50000), '192.0.2.7:50000');
  t.equal(hostPort('localhost', 8888), 'localhost:8888');
  t.equal(hostPort(undefined, undefined), '?:?', 'a socket already closed has no address');
});

t.test('the default host serves IPv4 and (where the machine has it) IPv6 clients alike', async (t) => {
  t.equal(DEFAULT_SERVER_HOST, '::');
  const server = createServer((socket) => socket.end(hostPort(socket.remoteAddress, socket.remotePort)));
  const address = await listen(server, DEFAULT_SERVER_HOST, 0);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const peerSeenFrom = async (host: string) => {
    const socket = await connect(host, address.port);
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString();
  };
  t.match(await peerSeenFrom('127.0.0.1'), /^127\.0\.0\.1:\d+$/, 'an IPv4 client connects and is logged as IPv4');
  if (address.host === '::') {
    t.match(await peerSeenFrom('::1'), /^\[::1\]:\d+$/, 'an IPv6 client connects and is logged in brackets');
  } else {
    t.equal(address.host, '0.0.0.0', 'without IPv6 the server falls back to every IPv4 address');
  }
});

t.test('refused over IPv6: the line says a 0.0.0.0 server takes IPv4 only', async (t) => {
  const message = explainConnectError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), { host: '::1', port: 8888 });
  t.match(message, 'connection refused by [::1]:8888');
  t.match(message, '--host 127.0.0.1');
});

t.test('listen on port 0 reports the port the system chose', async (t) => {
  const server = createServer();
  const address = await listen(server, '127.0.0.1', 0);
  t.ok(address.port > 0);
  t.equal(address.host, '127.0.0.1');
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

t.test('a port in use is one readable line', async (t) => {
  const first = createServer();
  const { port } = await listen(first, '127.0.0.1', 0);
  const error = await listen(createServer(), '127.0.0.1', port).catch((e: unknown) => e);
  t.type(error, UserError);
  t.match((error as Error).message, `port ${port} is already in use`);
  t.match((error as Error).message, '--port 0');
  await new Promise<void>((resolve) => first.close(() => resolve()));
});

t.test('a refused connection is one readable line', async (t) => {
  const probe = createServer();
  const { port } = await listen(probe, '127.0.0.1', 0);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const error = await connect('127.0.0.1', port).catch((e: unknown) => e);
  t.type(error, UserError);
  t.match((error as Error).message, /connection refused by 127\.0\.0\.1:\d+: is the server running/);
});

t.test('an unknown host is one readable line', async (t) => {
  // .invalid never resolves (RFC 2606); the answer is ENOTFOUND, or EAI_AGAIN without DNS.
  const error = await connect('no-such-host.invalid', 8888).catch((e: unknown) => e);
  t.type(error, UserError);
  t.match((error as Error).message, 'host not found: no-such-host.invalid');
});

/** A name shown with every non-ASCII character escaped, so test titles stay one plain line. */
const shown = (name: string) => JSON.stringify(name).replace(/[^\x20-\x7e]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);

t.test('names: the rule shared by every stage', async (t) => {
  for (const good of ['Ada', 'Zoë', '🎧', 'a b', 'x'.repeat(32), '👩‍👩‍👧']) t.equal(nameProblem(good), null, `${shown(good)} is fine`);
  for (const bad of ['', ' Ada', 'Ada ', 'x'.repeat(33), 'a\x1b[31m', 'a\nb', 'a\u0085b', 'a\u202eb', 'a\u2028b', 'a\x7f', 'A\ud800', '\udfffA']) {
    t.not(nameProblem(bad), null, `${shown(bad)} is refused`);
  }
});

t.test('printable: every character a name may not hold is shown as an escape, the rest is untouched', async (t) => {
  t.equal(printable('Zoë 🎧 a b'), 'Zoë 🎧 a b');
  t.equal(printable('\x1b[2J'), '\\x1b[2J', 'ESC: a terminal escape sequence becomes harmless text');
  t.equal(printable('a\nb\r\x7f\u0085'), 'a\\x0ab\\x0d\\x7f\\x85');
  t.equal(printable('x\u202ey\u2028z\u2066'), 'x\\u202ey\\u2028z\\u2066', 'bidi overrides and separators');
  t.equal(printable('\x07\x07'), '\\x07\\x07', 'every occurrence, not just the first');
  t.equal(printable('A\ud800'), 'A\\ud800', 'a lone surrogate (no character, no UTF-8 form) is shown as its JSON escape');
  t.equal(printable('\ud83c\udfa7'), '🎧', 'a surrogate pair is one character, untouched');
});

t.test('command line: --no-files (stages 07 and 08) is an option of its own, not "files" negated', async (t) => {
  for (const folder of ['07-chat-files', '08-calls']) {
    // Nothing listens on port 1: a parsed command line gets as far as the refused connection.
    const run = await runCommand(`"${process.execPath}" --import tsx ${folder}/main.ts`, ['client', '--name', 'Cat', '--host', '127.0.0.1', '--port', '1', '--input', 'silence', '--output', 'null', '--no-files'], { cwd: repoRoot, timeoutMs: 30_000 });
    t.notMatch(run.stderr, /Unknown argument/, `${folder}: --no-files is known`);
    t.match(run.stderr, /refused/, `${folder}: the client got as far as connecting`);
    t.equal(run.exitCode, 1, `${folder}: exit 1 for the refused connection, not 2 for a usage error`);
  }
});

t.test('command line: --help explains every option; mistakes are one line with exit 2', async (t) => {
  const help = await runCommand(stage01, ['client', '--help'], { cwd: repoRoot });
  t.equal(help.exitCode, 0);
  for (const option of ['--name', '--host', '--port', '--help']) t.match(help.stdout, option);
  const serverHelp = await runCommand(stage01, ['server', '--help'], { cwd: repoRoot });
  for (const option of ['--host', '--port', 'PORT', '8888']) t.match(serverHelp.stdout, option);

  const badPort = await runCommand(stage01, ['server', '--port', 'abc'], { cwd: repoRoot });
  t.equal(badPort.exitCode, 2);
  t.match(badPort.stderr, /^error: invalid port "abc"/m);
  t.notMatch(badPort.stderr, STACK_TRACE, 'no stack trace');

  const noName = await runCommand(stage01, ['client'], { cwd: repoRoot });
  t.equal(noName.exitCode, 2);
  t.match(noName.stderr, /--name/);
});

t.test('command line: the server in use on its port exits with one line', async (t) => {
  const blocker = createServer();
  const { port } = await listen(blocker, '127.0.0.1', 0);
  const result = await runCommand(stage01, ['server', '--host', '127.0.0.1', '--port', String(port)], { cwd: repoRoot, timeoutMs: 20_000 });
  t.equal(result.exitCode, 1);
  t.equal(errorLines(result.stderr).length, 1, 'one line');
  t.match(result.stderr, `port ${port} is already in use`);
  await new Promise<void>((resolve) => blocker.close(() => resolve()));
});

t.test('command line: PORT from the environment is used', async (t) => {
  const probe = createServer();
  const { port } = await listen(probe, '127.0.0.1', 0);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const result = await runCommand(stage01, ['client', '--name', 'Ada'], { cwd: repoRoot, env: { ...process.env, PORT: String(port) } });
  t.not(result.exitCode, 0);
  t.match(result.stderr, `localhost:${port}`, 'the client tried $PORT');
});

t.test('command line: a bad PORT is one line, and an explicit --port wins over it', async (t) => {
  const env = { ...process.env, PORT: 'abc' };
  const bad = await runCommand(stage01, ['client', '--name', 'Ada'], { cwd: repoRoot, env });
  t.equal(bad.exitCode, 2);
  t.match(bad.stderr, /^error: invalid PORT "abc" in the environment: .*--port/m);
  t.notMatch(bad.stderr, /^\s+at /m, 'no stack trace');

  const probe = createServer();
  const { port } = await listen(probe, '127.0.0.1', 0);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const explicit = await runCommand(stage01, ['client', '--name', 'Ada', '--host', '127.0.0.1', '--port', String(port)], { cwd: repoRoot, env });
  t.match(explicit.stderr, `connection refused by 127.0.0.1:${port}`, 'the client tried --port, PORT=abc notwithstanding');
});

const stage02 = `"${process.execPath}" --import tsx 02-echo/main.ts`;

t.test('command line: --duration shows the text given when it is not a number of seconds', async (t) => {
  for (const [stage, bad] of [[stage02, 'abc'], [stage02, '0'], [`"${process.execPath}" --import tsx 04-rooms/main.ts`, '5s']] as const) {
    const result = await runCommand(stage, ['client', '--name', 'Ada', '--input', 'silence', '--output', 'null', '--duration', bad], { cwd: repoRoot });
    t.equal(result.exitCode, 2, `--duration ${bad}`);
    t.match(result.stderr, `error: invalid --duration "${bad}": give a number of seconds above 0`);
    t.notMatch(result.stderr, 'NaN');
  }
});

t.test('command line: --output into a folder that does not exist is one clear line, not an "unexpected failure"', async (t) => {
  // Audio is opened before connecting: no server is needed.
  const result = await runCommand(stage02, ['client', '--name', 'Ada', '--input', 'silence', '--output', '/no/such/dir/x.wav', '--port', '1'], { cwd: repoRoot });
  t.equal(result.exitCode, 2);
  t.equal(result.stderr, 'error: cannot write /no/such/dir/x.wav: the folder /no/such/dir does not exist\n');
});
