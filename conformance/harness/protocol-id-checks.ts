// "Which stage is this server?": the checks of the optional "protocol" field that stages 02-04
// name in HELLO and WELCOME ("voice-chat/02" ...). Every stage listens on port 8888 by default, so
// programs of different stages meet; the field lets both sides say so in one line.
//
// The field is OPTIONAL in these stages (implementations written before it existed stay correct),
// so each check holds a program to the rule only once it shows that it speaks the field: a server
// whose WELCOME names its protocol must refuse another one, a client whose HELLO names its
// protocol must stop at a WELCOME that names another. The check names say so.
import { errorLines, hasStackTrace } from './program-output.ts';
import { CheckFailure } from './check-failure.ts';
import { expect, type Check, type CheckContext } from './checks.ts';
import { FakeServer } from './fake-server.ts';
import { frameBytes, hexType, jsonFrameBytes, jsonObjectOf, readFrame } from './frame-wire.ts';
import { runCommand } from './run-command.ts';
import { WireClient } from './wire-client.ts';

const HELLO = 0x01;
const WELCOME = 0x02;
const BYE = 0x04;
const ERROR = 0x05;
/** A protocol no stage speaks: what a server or client of "another stage" names. */
export const OTHER_PROTOCOL = 'voice-chat/99';
/** A previous check's user may still be leaving (stage 02 serves one user at a time). */
const BUSY_RETRY_MS = 2_000;
const CLOSE_AFTER_ERROR_MS = 3_000;

export interface ProtocolIdStage {
  /** "02" */
  id: string;
  /** HELLO's JSON object without "protocol" (stage 04 adds the room). */
  hello(name: string): Record<string, unknown>;
  /** WELCOME's JSON object without "protocol", as the fake server sends it. */
  welcome(name: string): Record<string, unknown>;
}

const protocolOf = (id: string) => `voice-chat/${id}`;

/** Sends HELLO naming our protocol until it is not answered "busy"; returns the connection and the answer. */
async function helloNamingProtocol(context: CheckContext, stage: ProtocolIdStage, name: string) {
  const deadline = Date.now() + BUSY_RETRY_MS;
  for (;;) {
    const client = await WireClient.connect(context.server.host, context.server.port);
    client.send(jsonFrameBytes(HELLO, { ...stage.hello(name), protocol: protocolOf(stage.id) }));
    const answer = await readFrame(client, `WELCOME for a HELLO with "protocol": "${protocolOf(stage.id)}"`, {
      hint: `"protocol" is optional in HELLO; a server that knows it accepts "${protocolOf(stage.id)}", one that does not ignores it like any unknown field`,
    });
    const parsed = jsonObjectOf(answer.payload);
    const busy = answer.type === ERROR && 'object' in parsed && parsed.object.code === 'busy';
    if (!busy || Date.now() >= deadline) return { client, answer, parsed };
    client.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Server: accepts HELLO naming this stage's protocol; if its WELCOME names one, it is ours and another is refused. */
export function protocolIdServerCheck(stage: ProtocolIdStage): Check {
  const ours = protocolOf(stage.id);
  return {
    name: `protocol: accepts a HELLO that says "${ours}"; a server whose WELCOME states its protocol refuses "${OTHER_PROTOCOL}" (ERROR wrong_protocol)`,
    async run(context) {
      const { client, answer, parsed } = await helloNamingProtocol(context, stage, 'Ada');
      let welcomeProtocol: unknown;
      try {
        const welcome = answer.type === WELCOME && 'object' in parsed ? parsed.object : undefined;
        expect(welcome !== undefined, `a HELLO naming "${ours}" was not welcomed`, {
          expected: 'WELCOME (0x02) with a JSON object',
          actual: `${hexType(answer.type)} ${answer.payload.toString('utf8').slice(0, 200)}`,
          sent: client.sent,
          received: client.received,
          hint: `"protocol": "${ours}" is this stage's own protocol: accept it (or ignore the field, which is optional)`,
        });
        welcomeProtocol = Object.hasOwn(welcome, 'protocol') ? welcome.protocol : undefined;
        expect(welcomeProtocol === undefined || welcomeProtocol === ours, 'WELCOME names another protocol', {
          expected: `no "protocol" field, or "protocol": "${ours}"`,
          actual: `"protocol": ${JSON.stringify(welcomeProtocol)}`,
          received: client.received,
          hint: `this stage's protocol is "${ours}"`,
        });
        client.send(frameBytes(BYE));
        client.end();
        await client.waitForClose(BUSY_RETRY_MS).catch(() => client.destroy());
      } finally {
        client.destroy();
      }
      // A server that does not name its protocol may ignore the field (it is optional): nothing more to hold it to.
      if (welcomeProtocol === undefined) return;
      const other = await WireClient.connect(context.server.host, context.server.port);
      try {
        other.send(jsonFrameBytes(HELLO, { ...stage.hello('Bob'), protocol: OTHER_PROTOCOL }));
        const refusal = await readFrame(other, 'ERROR wrong_protocol', { hint: `a HELLO whose "protocol" is present and not "${ours}" gets ERROR wrong_protocol` });
        const object = jsonObjectOf(refusal.payload);
        expect(refusal.type === ERROR && 'object' in object && object.object.code === 'wrong_protocol' && typeof object.object.message === 'string', `a HELLO naming "${OTHER_PROTOCOL}" was not refused with wrong_protocol`, {
          expected: 'ERROR (0x05) {"code": "wrong_protocol", "message": "<which protocol this server speaks>"}, then close',
          actual: `${hexType(refusal.type)} ${refusal.payload.toString('utf8').slice(0, 200)}`,
          sent: other.sent,
          received: other.received,
          hint: `your WELCOME names "${ours}", so check HELLO's "protocol" too: present and different means a client of another stage`,
        });
        await other.waitForClose(CLOSE_AFTER_ERROR_MS, 'the server to close the connection after ERROR', 'after sending ERROR, close that connection');
      } finally {
        other.destroy();
      }
    },
  };
}

/** Client: if its HELLO names its protocol, it is ours, and a WELCOME naming another ends the client in one line. */
export function protocolIdClientCheck(stage: ProtocolIdStage, clientArgs: string[]): Check {
  const ours = protocolOf(stage.id);
  return {
    name: `client: if its HELLO states its protocol ("${ours}"), a WELCOME stating "${OTHER_PROTOCOL}" gives one line about the protocol and a non-zero exit`,
    subject: 'client',
    async run(context) {
      const fake = await FakeServer.start();
      try {
        const run = runCommand(context.clientCommand, ['--name', 'Ada', '--host', '127.0.0.1', '--port', String(fake.port), ...clientArgs], { timeoutMs: 20_000 });
        const connection = await Promise.race([
          fake.connection(0, 10_000),
          run.then((result): never => {
            throw new CheckFailure('the client exited without connecting', { expected: 'a connection to --host:--port', actual: `exit ${result.exitCode}; stderr ${JSON.stringify(result.stderr.slice(-300))}`, hint: `command: ${result.command}` });
          }),
        ]);
        const hello = await readFrame(connection, "the client's HELLO", { timeoutMs: 10_000 });
        const parsed = jsonObjectOf(hello.payload);
        expect(hello.type === HELLO && 'object' in parsed, 'the client did not start with HELLO', {
          expected: 'a HELLO frame (0x01) with a JSON object',
          actual: `${hexType(hello.type)} ${hello.payload.toString('utf8').slice(0, 200)}`,
          received: connection.received,
          hint: 'the first frame a client sends is HELLO',
        });
        const helloProtocol = Object.hasOwn(parsed.object, 'protocol') ? parsed.object.protocol : undefined;
        expect(helloProtocol === undefined || helloProtocol === ours, 'HELLO names another protocol', {
          expected: `no "protocol" field, or "protocol": "${ours}"`,
          actual: `"protocol": ${JSON.stringify(helloProtocol)}`,
          received: connection.received,
          hint: `this stage's protocol is "${ours}"`,
        });
        connection.send(jsonFrameBytes(WELCOME, { ...stage.welcome('Ada'), protocol: OTHER_PROTOCOL }));
        if (helloProtocol === undefined) {
          // A client that does not name its protocol may ignore the field (it is optional): let it go.
          connection.end();
          await run;
          return;
        }
        const result = await run;
        const lines = errorLines(result.stderr);
        expect(result.exitCode !== 0 && !result.timedOut && lines.length === 1 && /protocol/i.test(lines[0]!) && !hasStackTrace(result.stderr), 'the client did not stop at a server of another protocol', {
          expected: `a non-zero exit and one line on standard error about the protocol (for example "this server speaks another stage's protocol (\\"${OTHER_PROTOCOL}\\")")`,
          actual: `exit ${result.exitCode}${result.timedOut ? ' (killed: timed out)' : ''}; stderr ${JSON.stringify(result.stderr.slice(-300))}`,
          received: connection.received,
          hint: `your HELLO names "${ours}", so check WELCOME's "protocol" too: present and different means a server of another stage`,
        });
      } finally {
        await fake.close();
      }
    },
  };
}
