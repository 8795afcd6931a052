// The client's limit on a control payload from the server, 256 KiB in stages 03-08 (each README's
// limits table: "a client closes the connection on a longer one"). One check, built per stage with
// that stage's session, USERS layout and `users` command: a USERS of exactly 262 144 bytes is read
// and applied (the client keeps its connection and lists the last name in it), and in a second run
// the same USERS one byte longer makes the client close the connection. Only the size differs
// between the two frames, so a client that closes on the first or keeps the second has the number wrong.
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, type Check, type CheckContext } from './checks.ts';
import { EXIT_DEADLINE_MS, thenExit, type Session } from './client-session.ts';
import { frameBytes } from './frame-wire.ts';

/** The READMEs' limit on what a client accepts from the server in one control payload. */
export const CLIENT_CONTROL_LIMIT_BYTES = 256 * 1024;
/** The READMEs' example of what fits: USERS with 1000 names of 32 characters. */
const USER_COUNT = 1000;
/** How long a client may take to close the connection on a payload over the limit (no README number: generous). */
const CLOSE_DEADLINE_MS = 5_000;
/** How long the client may take to answer the `users` command after the large USERS was sent. */
const ANSWER_DEADLINE_MS = 5_000;
/** How often the `users` command is typed while waiting (the large USERS may still be arriving when it is first typed). */
const ASK_EVERY_MS = 500;

export interface ControlLimitStage {
  /** The stage's USERS message type. */
  usersType: number;
  /** Runs the client under test (named `name`) against a fake server that answers its HELLO as the stage's server does. */
  start(context: CheckContext, name: string): Promise<Session>;
  /** The stage's USERS payload for a room holding these users; names[0] is the client itself. */
  users(names: string[]): Record<string, unknown>;
  /** The command that prints the current list of users ("users", "/users" from stage 07). */
  usersCommand: string;
}

/** The 999 other users: 32-character names, each one distinct ("Guest0001" then letters). */
const guestNames = Array.from({ length: USER_COUNT - 1 }, (_, i) => `Guest${String(i + 1).padStart(4, '0')}${'abcdefghijklmnopqrstuvw'}`);
const LAST_GUEST = guestNames.at(-1)!.slice(0, 9); // "Guest0999": named by the list only, last in it

/** A character as a JSON escape ("a" -> "\u0061"): valid JSON, six bytes each, the name unchanged once parsed. */
const escaped = (text: string) => [...text].map((char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');

/**
 * The USERS payload listing `own` and the 999 guests, exactly `size` bytes of valid JSON: the
 * guests' names written as \u escapes (1000 plain names of 32 characters make only ~35 KB), then
 * spaces before the closing brace (JSON's insignificant whitespace) to the byte.
 */
export function usersPayloadOfSize(stage: ControlLimitStage, own: string, size: number): Buffer {
  const json = JSON.stringify(stage.users([own, ...guestNames])).replace(/"(Guest\d{4}[a-w]{23})"/g, (_, name: string) => `"${escaped(name)}"`);
  if (!json.endsWith('}') || json.length > size) throw new Error(`the USERS of 1000 names is ${json.length} bytes: it cannot be padded to ${size}`);
  const payload = Buffer.from(`${json.slice(0, -1)}${' '.repeat(size - json.length)}}`, 'utf8');
  JSON.parse(payload.toString('utf8')); // the check's own mistake, not the client's, if this throws
  return payload;
}

const bytes = (n: number) => n.toLocaleString('en-US').replace(/,/g, ' ');

export function controlLimitClientCheck(stage: ControlLimitStage): Check {
  const limit = CLIENT_CONTROL_LIMIT_BYTES;
  return {
    name: `client: a control payload of 256 KiB (a USERS of ${bytes(limit)} bytes) is read with the connection kept; one byte more closes the connection`,
    subject: 'client',
    async run(context) {
      // 1. Exactly the limit: the client keeps the connection, and its user list has the last guest.
      const atLimit = await stage.start(context, 'Ada');
      await thenExit(atLimit, async () => {
        atLimit.connection.send(frameBytes(stage.usersType, usersPayloadOfSize(stage, 'Ada', limit)));
        const sentAt = Date.now();
        let exited = false;
        void atLimit.client.done.then(() => (exited = true));
        const typedFrom = atLimit.client.stdout.length;
        for (;;) {
          const answer = atLimit.client.stdout.slice(typedFrom);
          if (answer.includes(LAST_GUEST)) break;
          expect(!atLimit.connection.isClosed && !exited, `the client closed the connection on a USERS of exactly ${bytes(limit)} bytes (256 KiB)`, {
            expected: `a control payload of up to 256 KiB (${bytes(limit)} bytes) is accepted: USERS with ${USER_COUNT} names of 32 characters fits`,
            actual: `${exited ? 'the client exited' : 'the connection closed'} ${Date.now() - sentAt} ms after the USERS; standard output ends ${JSON.stringify(atLimit.client.stdout.slice(-300))}`,
            hint: `the limit on a control payload from the server is 256 KiB = ${bytes(limit)} bytes: a payload of exactly that length is valid`,
          });
          expect(Date.now() - sentAt < ANSWER_DEADLINE_MS, `the client did not list the users of a USERS of exactly ${bytes(limit)} bytes (256 KiB)`, {
            expected: `within ${ANSWER_DEADLINE_MS / 1000} s, an answer to "${stage.usersCommand}" that names ${LAST_GUEST}... (the last of the ${USER_COUNT} users in the USERS)`,
            actual: `answers so far: ${JSON.stringify(answer.slice(-300))}`,
            hint: `read a control payload of up to ${bytes(limit)} bytes whole and apply it; "${stage.usersCommand}" prints the current list`,
          });
          atLimit.client.type(`${stage.usersCommand}\n`);
          await sleep(ASK_EVERY_MS);
        }
      });

      // 2. One byte more, in a fresh run: the client must close the connection.
      const overLimit = await stage.start(context, 'Ada');
      try {
        overLimit.connection.send(frameBytes(stage.usersType, usersPayloadOfSize(stage, 'Ada', limit + 1)));
        const sentAt = Date.now();
        while (!overLimit.connection.isClosed && Date.now() - sentAt < CLOSE_DEADLINE_MS) await sleep(50);
        expect(overLimit.connection.isClosed, `the client kept the connection after a USERS of ${bytes(limit + 1)} bytes (256 KiB + 1)`, {
          expected: `the client closes the connection within ${CLOSE_DEADLINE_MS / 1000} s: a control payload over 256 KiB (${bytes(limit)} bytes) is refused`,
          actual: `still connected ${CLOSE_DEADLINE_MS / 1000} s after the frame (header 5 bytes declaring ${bytes(limit + 1)}); standard output ends ${JSON.stringify(overLimit.client.stdout.slice(-200))}`,
          hint: `compare the declared length with ${bytes(limit)} on the 5 header bytes, and close the connection on a longer control payload (a larger limit lets a server make the client buffer without bound)`,
        });
      } finally {
        overLimit.client.kill();
        await overLimit.fake.close();
        await overLimit.client.exit(EXIT_DEADLINE_MS);
      }
    },
  };
}
