// Specification of ProtocolError: a protocol violation with a stable code.

import t from 'tap';
import { FRAMING_ERROR_CODES, ProtocolError } from '#shared/protocol-error.ts';

t.test('a ProtocolError is an Error carrying a code and a message', async (t) => {
  const error = new ProtocolError('room_full', 'room "lobby" is full (8 of 8)');
  t.ok(error instanceof Error, 'catch blocks and loggers treat it as an Error');
  t.ok(error instanceof ProtocolError);
  t.equal(error.name, 'ProtocolError');
  t.equal(error.code, 'room_full', 'stages may add their own codes');
  t.equal(error.message, 'room "lobby" is full (8 of 8)');
});

t.test('framing codes are stable snake_case strings', async (t) => {
  t.strictSame(Object.values(FRAMING_ERROR_CODES).sort(), [
    'bad_field',
    'bad_json',
    'bad_utf8',
    'frame_too_large',
    'unknown_type',
  ]);
});
