// The protocol violations every stage README names, as bytes and the ERROR code they must get.
import { frame, header, jsonFrame } from './frames.ts';
import { HOSTILE_NAMES } from './fuzz-case.ts';
import { ACCEPT, ADDRESS, AUDIO, BYE, CALL_END, CALL_START, CANCEL, DECLINE, ERROR, FRAME_BYTES, HANGUP, HELLO, INVITE, JOIN, LIST_ROOMS, LOOKUP, MAX_HELLO_BYTES, OFFER, PATH, PRESENCE, TEXT, USERS, WELCOME, type StageWire } from './wire-spec.ts';

export interface Violation {
  what: string;
  bytes: Buffer;
  code: string;
}

const audioOf = (bytes: number) => frame(AUDIO, Buffer.alloc(bytes, 0x11));
/** The most a client's 0x03 frame may carry: one PCM frame, or (stage 05) a sequence number and the largest Opus packet. */
const audioLimit = (wire: StageWire) => wire.clientLimits.get(AUDIO)!;
/** A 0x03 frame the stage accepts from a joined user. */
const goodAudio = (wire: StageWire) => (wire.opusVoice ? wire.talkerFrame() : audioOf(FRAME_BYTES));

/** Violations on a fresh connection, before any HELLO. */
export function beforeJoining(wire: StageWire, room: string): Violation[] {
  const hello = (fields: Record<string, unknown>) => jsonFrame(HELLO, { ...wire.hello('Mallory', room), ...fields });
  const list: Violation[] = [
    { what: 'type 0x00', bytes: frame(0x00, 'x'), code: 'unknown_type' },
    { what: 'type 0x7f', bytes: frame(0x7f, 'garbage'), code: 'unknown_type' },
    { what: 'type 0xff and nothing else', bytes: Buffer.from([0xff]), code: 'unknown_type' },
    { what: 'WELCOME from a client', bytes: jsonFrame(WELCOME, { name: 'Mallory' }), code: 'unknown_type' },
    { what: 'ERROR from a client', bytes: jsonFrame(ERROR, { code: 'x', message: 'y' }), code: 'unknown_type' },
    { what: 'HELLO declaring 4 GB (header only)', bytes: header(HELLO, 0xffffffff), code: 'frame_too_large' },
    { what: `HELLO declaring ${MAX_HELLO_BYTES + 1} bytes`, bytes: header(HELLO, MAX_HELLO_BYTES + 1), code: 'frame_too_large' },
    { what: `AUDIO declaring ${audioLimit(wire) + 1} bytes`, bytes: header(AUDIO, audioLimit(wire) + 1), code: 'frame_too_large' },
    { what: 'AUDIO declaring 2 GB', bytes: header(AUDIO, 0x80000000), code: 'frame_too_large' },
    { what: 'BYE declaring 1 byte', bytes: header(BYE, 1), code: 'frame_too_large' },
    { what: 'HELLO that is not UTF-8', bytes: frame(HELLO, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])), code: 'bad_utf8' },
    { what: 'HELLO with an overlong UTF-8 "/"', bytes: frame(HELLO, Buffer.from('{"name":"\xc0\xaf"}', 'latin1')), code: 'bad_utf8' },
    { what: 'HELLO that is cut-off JSON', bytes: frame(HELLO, '{"name":'), code: 'bad_json' },
    { what: 'HELLO that is a JSON array', bytes: frame(HELLO, '["Mallory"]'), code: 'bad_json' },
    { what: 'HELLO that is a JSON string', bytes: frame(HELLO, '"Mallory"'), code: 'bad_json' },
    { what: 'HELLO that is JSON null', bytes: frame(HELLO, 'null'), code: 'bad_json' },
    { what: 'HELLO holding NaN (not JSON, though some parsers take it)', bytes: frame(HELLO, '{"name":"Mallory","x":NaN}'), code: 'bad_json' },
    { what: 'empty HELLO', bytes: frame(HELLO), code: 'bad_json' },
    // Cut-off JSON nested 1000 deep: a parser that recurses per level must not take the server down.
    { what: 'HELLO of 1000 "[" (cut-off JSON nested 1000 deep)', bytes: frame(HELLO, '['.repeat(1000)), code: 'bad_json' },
    { what: 'HELLO without a name', bytes: hello({ name: undefined }), code: 'bad_field' },
    { what: 'HELLO with "name": 42', bytes: hello({ name: 42 }), code: 'bad_field' },
    { what: 'HELLO with "name": null', bytes: hello({ name: null }), code: 'bad_field' },
    { what: 'HELLO with "name": ["Ada"]', bytes: hello({ name: ['Ada'] }), code: 'bad_field' },
    { what: 'HELLO with "name": {"first": "Ada"}', bytes: hello({ name: { first: 'Ada' } }), code: 'bad_field' },
    { what: 'HELLO with "name": true', bytes: hello({ name: true }), code: 'bad_field' },
    { what: 'AUDIO before HELLO', bytes: goodAudio(wire), code: 'not_joined' },
    { what: 'BYE before HELLO', bytes: frame(BYE), code: 'not_joined' },
  ];
  for (const name of HOSTILE_NAMES) {
    if (typeof name !== 'string') continue; // not a string: bad_field, above
    list.push({ what: `the name ${JSON.stringify(name)}`, bytes: hello({ name }), code: 'bad_name' });
  }
  // JSON.stringify writes a lone surrogate as the escape \ud800: valid JSON, but no character.
  list.push({ what: 'the name "A\\ud800" (a lone surrogate escape)', bytes: hello({ name: 'A\ud800' }), code: 'bad_name' });
  if (wire.protocol !== undefined) {
    list.push(
      { what: 'HELLO without "protocol" (a stage 04 client)', bytes: jsonFrame(HELLO, { name: 'Mallory', room }), code: 'wrong_protocol' },
      { what: 'HELLO with "protocol": "voice-chat/04"', bytes: hello({ protocol: 'voice-chat/04' }), code: 'wrong_protocol' },
      { what: 'VOICE declaring 2 bytes before HELLO (header only)', bytes: header(AUDIO, 2), code: 'bad_voice_size' },
    );
    if (wire.clientLimits.has(PATH)) list.push({ what: 'PATH before HELLO', bytes: jsonFrame(PATH, { path: 'udp' }), code: 'not_joined' });
  }
  if (wire.moves !== undefined) {
    list.push(
      { what: 'HELLO without a room', bytes: hello({ room: undefined }), code: 'bad_field' },
      { what: 'HELLO with "room": 7', bytes: hello({ room: 7 }), code: 'bad_field' },
      { what: 'HELLO with the room "a b"', bytes: hello({ room: 'a b' }), code: 'bad_room' },
      { what: 'HELLO with the room "\\x1b[2J"', bytes: hello({ room: '\x1b[2J' }), code: 'bad_room' },
      { what: 'HELLO with a room of 65 characters', bytes: hello({ room: 'r'.repeat(65) }), code: 'bad_room' },
      { what: 'USERS from a client', bytes: jsonFrame(USERS, { users: [] }), code: 'unknown_type' },
      { what: 'JOIN before HELLO', bytes: jsonFrame(JOIN, { room }), code: 'not_joined' },
      { what: 'LIST_ROOMS before HELLO', bytes: frame(LIST_ROOMS), code: 'not_joined' },
      { what: 'JOIN declaring 4 GB', bytes: header(JOIN, 0xffffffff), code: 'frame_too_large' },
      { what: `JOIN declaring ${MAX_HELLO_BYTES + 1} bytes`, bytes: header(JOIN, MAX_HELLO_BYTES + 1), code: 'frame_too_large' }, // one over the README's 1024, not only absurd lengths
      { what: 'LIST_ROOMS declaring 1 byte', bytes: header(LIST_ROOMS, 1), code: 'frame_too_large' },
    );
  }
  if (wire.calls !== undefined) {
    list.push(
      { what: 'INVITE before HELLO', bytes: jsonFrame(INVITE, { to: 'Ada' }), code: 'not_joined' },
      { what: 'LOOKUP before HELLO', bytes: jsonFrame(LOOKUP, { name: 'Ada' }), code: 'not_joined' },
      { what: 'HANGUP before HELLO', bytes: jsonFrame(HANGUP, { call: 1 }), code: 'not_joined' },
      { what: 'ADDRESS from a client', bytes: jsonFrame(ADDRESS, { address: '127.0.0.1', port: 1 }), code: 'unknown_type' },
      { what: 'CALL_START from a client', bytes: jsonFrame(CALL_START, { call: 1 }), code: 'unknown_type' },
      { what: 'INVITE declaring 1025 bytes', bytes: header(INVITE, MAX_HELLO_BYTES + 1), code: 'frame_too_large' },
      { what: 'ACCEPT declaring 257 bytes', bytes: header(ACCEPT, 257), code: 'frame_too_large' },
    );
  }
  if (wire.id === '03') list.push({ what: 'USERS from a client', bytes: jsonFrame(USERS, { users: [] }), code: 'unknown_type' });
  return list;
}

/** Violations by a user who has joined (the bytes follow a valid HELLO). */
export function afterJoining(wire: StageWire, room: string): Violation[] {
  if (wire.opusVoice) {
    const paths: Violation[] = wire.clientLimits.has(PATH)
      ? [
          { what: 'PATH {"path": "pigeon"}', bytes: jsonFrame(PATH, { path: 'pigeon' }), code: 'bad_path' },
          { what: 'PATH that is not JSON', bytes: frame(PATH, '{path'), code: 'bad_path' },
          { what: 'PATH declaring 1025 bytes', bytes: header(PATH, 1025), code: 'frame_too_large' },
        ]
      : [];
    // Stage 08: the fields of the call messages (a REFUSED is for a valid message the server turns down).
    const calls: Violation[] = wire.calls !== undefined
      ? [
          { what: 'INVITE with "to": 42', bytes: jsonFrame(INVITE, { to: 42 }), code: 'bad_field' },
          { what: 'INVITE without "to"', bytes: jsonFrame(INVITE, { name: 'Ada' }), code: 'bad_field' },
          { what: 'INVITE with "relay_only": "yes"', bytes: jsonFrame(INVITE, { to: 'Ada', relay_only: 'yes' }), code: 'bad_field' },
          { what: 'LOOKUP with "name": null', bytes: jsonFrame(LOOKUP, { name: null }), code: 'bad_field' },
          { what: 'LOOKUP that is not JSON', bytes: frame(LOOKUP, '{name'), code: 'bad_json' },
          { what: 'ACCEPT with "call": 0', bytes: jsonFrame(ACCEPT, { call: 0 }), code: 'bad_field' },
          { what: 'DECLINE with "call": 65536', bytes: jsonFrame(DECLINE, { call: 65536 }), code: 'bad_field' },
          { what: 'HANGUP with "call": "7"', bytes: jsonFrame(HANGUP, { call: '7' }), code: 'bad_field' },
          { what: 'HANGUP that is not UTF-8', bytes: frame(HANGUP, Buffer.from([0xff])), code: 'bad_utf8' },
          { what: 'HANGUP declaring 257 bytes', bytes: header(HANGUP, 257), code: 'frame_too_large' },
          { what: 'LOOKUP declaring 1025 bytes', bytes: header(LOOKUP, MAX_HELLO_BYTES + 1), code: 'frame_too_large' },
          { what: 'CALL_END from a client', bytes: jsonFrame(CALL_END, { call: 1, reason: 'hangup' }), code: 'unknown_type' },
          { what: 'PRESENCE from a client', bytes: jsonFrame(PRESENCE, { id: 1, name: 'x', in_call: true }), code: 'unknown_type' },
        ]
      : [];
    // Stage 07 on: the declared-length limits of the chat messages (one over each), and CANCEL's field.
    const chat: Violation[] = wire.chat
      ? [
          { what: 'TEXT declaring 8193 bytes', bytes: header(TEXT, 8193), code: 'frame_too_large' },
          { what: 'OFFER declaring 2049 bytes', bytes: header(OFFER, 2049), code: 'frame_too_large' },
          { what: `CANCEL declaring ${MAX_HELLO_BYTES + 1} bytes`, bytes: header(CANCEL, MAX_HELLO_BYTES + 1), code: 'frame_too_large' },
          { what: 'CANCEL with "transfer": 70000', bytes: jsonFrame(CANCEL, { transfer: 70_000 }), code: 'bad_field' },
        ]
      : [];
    return [
      ...paths,
      ...calls,
      ...chat,
      { what: 'a second HELLO', bytes: jsonFrame(HELLO, wire.hello('Again', room)), code: 'already_joined' },
      { what: 'VOICE of 2 bytes (no packet)', bytes: audioOf(2), code: 'bad_voice_size' },
      { what: 'VOICE of 0 bytes', bytes: audioOf(0), code: 'bad_voice_size' },
      { what: 'VOICE declaring 2 bytes (header only)', bytes: header(AUDIO, 2), code: 'bad_voice_size' },
      { what: 'VOICE declaring 1278 bytes', bytes: header(AUDIO, 1278), code: 'frame_too_large' },
      { what: 'type 0x42', bytes: frame(0x42, 'x'), code: 'unknown_type' },
      { what: 'a good VOICE, then type 0xee', bytes: Buffer.concat([goodAudio(wire), Buffer.from([0xee])]), code: 'unknown_type' },
      { what: 'JOIN that is not JSON', bytes: frame(JOIN, '{room'), code: 'bad_json' },
      { what: 'JOIN with "room": 5', bytes: jsonFrame(JOIN, { room: 5 }), code: 'bad_field' },
      { what: 'JOIN that is not UTF-8', bytes: frame(JOIN, Buffer.from([0xff])), code: 'bad_utf8' },
    ];
  }
  const list: Violation[] = [
    { what: 'a second HELLO', bytes: jsonFrame(HELLO, wire.hello('Again', room)), code: 'already_joined' },
    { what: 'AUDIO of 100 bytes', bytes: audioOf(100), code: 'bad_audio_size' },
    { what: 'AUDIO of 0 bytes', bytes: audioOf(0), code: 'bad_audio_size' },
    { what: 'AUDIO of 1919 bytes', bytes: audioOf(FRAME_BYTES - 1), code: 'bad_audio_size' },
    { what: 'AUDIO declaring 1921 bytes', bytes: header(AUDIO, FRAME_BYTES + 1), code: 'frame_too_large' },
    { what: 'type 0x42', bytes: frame(0x42, 'x'), code: 'unknown_type' },
    { what: 'a good AUDIO frame, then type 0xee', bytes: Buffer.concat([audioOf(FRAME_BYTES), Buffer.from([0xee])]), code: 'unknown_type' },
  ];
  if (wire.id === '04') {
    list.push(
      { what: 'JOIN that is not JSON', bytes: frame(JOIN, '{room'), code: 'bad_json' },
      { what: 'JOIN with "room": 5', bytes: jsonFrame(JOIN, { room: 5 }), code: 'bad_field' },
      { what: 'JOIN that is not UTF-8', bytes: frame(JOIN, Buffer.from([0xff])), code: 'bad_utf8' },
    );
  }
  return list;
}
