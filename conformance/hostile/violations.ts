// The protocol violations every stage README names, as bytes and the ERROR code they must get.
import { frame, header, jsonFrame } from './frames.ts';
import { HOSTILE_NAMES } from './fuzz-case.ts';
import { AUDIO, BYE, ERROR, FRAME_BYTES, HELLO, JOIN, LIST_ROOMS, MAX_HELLO_BYTES, PATH, USERS, WELCOME, type StageWire } from './wire-spec.ts';

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
    { what: 'empty HELLO', bytes: frame(HELLO), code: 'bad_json' },
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
      { what: 'LIST_ROOMS declaring 1 byte', bytes: header(LIST_ROOMS, 1), code: 'frame_too_large' },
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
    return [
      ...paths,
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
