// Stage 08's new messages: the directory (ADDRESS, LOOKUP, FOUND) and calls (INVITE, RINGING,
// ACCEPT, DECLINE, HANGUP, CALL_START, CALL_END, PRESENCE). Encoders and parsers for both
// directions. README.md has the tables and the state machine; the numbers are in call-limits.ts.
//
//   0x18 ADDRESS    server -> client  {"address": string, "port": number}   your UDP address as the server saw it
//   0x19 LOOKUP     client -> server  {"name": string}
//   0x1A FOUND      server -> client  {"name": string, "online": boolean, "state"?: "available" | "busy"}
//   0x1B INVITE     client -> server  {"to": string, "relay_only"?: boolean}
//                   server -> client  {"call": number, "from": {"id","name"}}
//   0x1C RINGING    server -> client  {"call": number, "to": {"id","name"}}
//   0x1D ACCEPT     client -> server  {"call": number, "relay_only"?: boolean}
//   0x1E DECLINE    client -> server  {"call": number}
//   0x1F HANGUP     client -> server  {"call": number}
//   0x20 CALL_START server -> client  {"call", "peer": {"id","name"}, "token": 16 hex, "peer_address": {"address","port"} | null}
//   0x21 CALL_END   server -> client  {"call": number, "reason": string, "by"?: {"id","name"}}
//   0x22 PRESENCE   server -> client  {"id": number, "name": string, "in_call": boolean}
import { isIP } from 'node:net';
import { decodeJsonObject, encodeJsonFrame, type JsonObject, requireString } from '#shared/framing/json-payload.ts';
import { FRAMING_ERROR_CODES, ProtocolError } from '#shared/protocol-error.ts';
import { MAX_CALL_ID, MIN_CALL_ID } from './call-limits.ts';
import { MAX_SESSION_ID, MIN_SESSION_ID, MessageType, TOKEN_PATTERN, type UserRef } from './protocol.ts';

export * from './call-limits.ts';

/** FOUND's "state" for a user who is online: ringing or in a call is "busy". */
export type FoundState = 'available' | 'busy';

/** Why a call ended (CALL_END "reason"); README.md's table says when each is sent and whom "by" names. */
export const CallEndReason = {
  declined: 'declined',
  cancelled: 'cancelled',
  noAnswer: 'no_answer',
  hangup: 'hangup',
  peerLeft: 'peer_left',
} as const;
export type CallEndReason = (typeof CallEndReason)[keyof typeof CallEndReason];

/** A UDP address as Node prints it: dotted IPv4, or IPv6 without brackets; and a port. */
export interface UdpAddress {
  address: string;
  port: number;
}

export interface Found {
  name: string;
  online: boolean;
  /** Only when online. */
  state?: FoundState;
}

/** A client's INVITE. `relayOnly`: keep both addresses from the peers (relay the call's voice). */
export interface InviteRequest {
  to: string;
  relayOnly: boolean;
}

/** A client's ACCEPT. */
export interface AcceptRequest {
  call: number;
  relayOnly: boolean;
}

/** The server's INVITE: someone calls you. */
export interface IncomingCall {
  call: number;
  from: UserRef;
}

/** RINGING: your INVITE rings them. */
export interface Ringing {
  call: number;
  to: UserRef;
}

/** CALL_START: the call is on; `token` (8 bytes) goes in every CALL_PROBE and CALL_VOICE. */
export interface CallStart {
  call: number;
  peer: UserRef;
  token: Buffer;
  /** The peer's bound UDP address, or null (no binding, or relay_only on either side). */
  peerAddress: UdpAddress | null;
}

export interface CallEnd {
  call: number;
  reason: CallEndReason;
  by?: UserRef;
}

/** PRESENCE: a member of your room started or ended a call (never with whom). */
export interface Presence extends UserRef {
  inCall: boolean;
}

// ---------------------------------------------------------------- client -> server

export function lookupFrame(name: string): Buffer {
  return encodeJsonFrame(MessageType.lookup, { name });
}

/** `relay_only` is written only when true (absent means false). */
export function inviteFrame(to: string, relayOnly = false): Buffer {
  return encodeJsonFrame(MessageType.invite, relayOnly ? { to, relay_only: true } : { to });
}

export function acceptFrame(call: number, relayOnly = false): Buffer {
  return encodeJsonFrame(MessageType.accept, relayOnly ? { call, relay_only: true } : { call });
}

export function declineFrame(call: number): Buffer {
  return encodeJsonFrame(MessageType.decline, { call });
}

export function hangupFrame(call: number): Buffer {
  return encodeJsonFrame(MessageType.hangup, { call });
}

// ---------------------------------------------------------------- server -> client

export function addressFrame({ address, port }: UdpAddress): Buffer {
  return encodeJsonFrame(MessageType.address, { address, port });
}

export function foundFrame(found: Found): Buffer {
  const object: JsonObject = { name: found.name, online: found.online };
  if (found.online && found.state !== undefined) object.state = found.state;
  return encodeJsonFrame(MessageType.found, object);
}

export function incomingCallFrame({ call, from }: IncomingCall): Buffer {
  return encodeJsonFrame(MessageType.invite, { call, from: userJson(from) });
}

export function ringingFrame({ call, to }: Ringing): Buffer {
  return encodeJsonFrame(MessageType.ringing, { call, to: userJson(to) });
}

export function callStartFrame({ call, peer, token, peerAddress }: CallStart): Buffer {
  return encodeJsonFrame(MessageType.callStart, {
    call,
    peer: userJson(peer),
    token: token.toString('hex'),
    peer_address: peerAddress === null ? null : { address: peerAddress.address, port: peerAddress.port },
  });
}

export function callEndFrame({ call, reason, by }: CallEnd): Buffer {
  return encodeJsonFrame(MessageType.callEnd, by === undefined ? { call, reason } : { call, reason, by: userJson(by) });
}

export function presenceFrame({ id, name, inCall }: Presence): Buffer {
  return encodeJsonFrame(MessageType.presence, { id, name, in_call: inCall });
}

// ---------------------------------------------------------------- parsing (server side)
// Fields of the wrong type are a broken client: ERROR bad_field (bad_utf8, bad_json before it).

/** A LOOKUP's name (any string: a name nobody can have is simply not online). */
export function parseLookup(payload: Buffer): string {
  return requireString(decodeJsonObject(payload), 'name');
}

/** A client's INVITE: "to" a string, "relay_only" absent or a boolean. */
export function parseClientInvite(payload: Buffer): InviteRequest {
  const object = decodeJsonObject(payload);
  return { to: requireString(object, 'to'), relayOnly: optionalBoolean(object, 'relay_only') };
}

/** An ACCEPT: "call" an integer 1-65535, "relay_only" absent or a boolean. */
export function parseAccept(payload: Buffer): AcceptRequest {
  const object = decodeJsonObject(payload);
  return { call: requireCallId(object), relayOnly: optionalBoolean(object, 'relay_only') };
}

/** The call id of a DECLINE or HANGUP (an integer 1-65535). */
export function parseCallAnswer(payload: Buffer): number {
  return requireCallId(decodeJsonObject(payload));
}
export const parseDecline = parseCallAnswer;
export const parseHangup = parseCallAnswer;

// ---------------------------------------------------------------- parsing (client side)

export function parseAddress(payload: Buffer): UdpAddress {
  return requireAddress(decodeJsonObject(payload), 'ADDRESS');
}

/** FOUND: "state" is read (and must be available or busy) only when "online" is true. */
export function parseFound(payload: Buffer): Found {
  const object = decodeJsonObject(payload);
  const name = requireString(object, 'name');
  const online = field(object, 'online');
  if (typeof online !== 'boolean') throw badField('online', 'a boolean', online);
  if (!online) return { name, online };
  const state = field(object, 'state');
  if (state !== 'available' && state !== 'busy') throw badField('state', '"available" or "busy"', state);
  return { name, online, state };
}

export function parseIncomingCall(payload: Buffer): IncomingCall {
  const object = decodeJsonObject(payload);
  return { call: requireCallId(object), from: requireUser(object, 'from') };
}

export function parseRinging(payload: Buffer): Ringing {
  const object = decodeJsonObject(payload);
  return { call: requireCallId(object), to: requireUser(object, 'to') };
}

export function parseCallStart(payload: Buffer): CallStart {
  const object = decodeJsonObject(payload);
  const token = field(object, 'token');
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) throw badField('token', '16 lowercase hex digits', token);
  if (!Object.hasOwn(object, 'peer_address')) throw badField('peer_address', '{"address", "port"} or null', undefined);
  const address = object.peer_address;
  return {
    call: requireCallId(object),
    peer: requireUser(object, 'peer'),
    token: Buffer.from(token, 'hex'),
    peerAddress: address === null ? null : requireAddress(address, 'peer_address'),
  };
}

export function parseCallEnd(payload: Buffer): CallEnd {
  const object = decodeJsonObject(payload);
  const reason = field(object, 'reason');
  if (typeof reason !== 'string' || !(Object.values(CallEndReason) as string[]).includes(reason)) {
    throw badField('reason', `one of ${Object.values(CallEndReason).join(', ')}`, reason);
  }
  const end: CallEnd = { call: requireCallId(object), reason: reason as CallEndReason };
  if (Object.hasOwn(object, 'by')) end.by = requireUser(object, 'by');
  return end;
}

export function parsePresence(payload: Buffer): Presence {
  const object = decodeJsonObject(payload);
  const inCall = field(object, 'in_call');
  if (typeof inCall !== 'boolean') throw badField('in_call', 'a boolean', inCall);
  const user = userFrom(object, 'PRESENCE');
  return { id: user.id, name: user.name, inCall };
}

// ---------------------------------------------------------------- helpers

function userJson(user: UserRef): JsonObject {
  return { id: user.id, name: user.name };
}

function field(object: JsonObject, name: string): unknown {
  return Object.hasOwn(object, name) ? object[name] : undefined;
}

function badField(name: string, expected: string, value: unknown): ProtocolError {
  return new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, `field "${name}" must be ${expected}, got ${JSON.stringify(value)?.slice(0, 64) ?? 'nothing'}`);
}

function optionalBoolean(object: JsonObject, name: string): boolean {
  const value = field(object, name);
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw badField(name, 'a boolean (or absent)', value);
  return value;
}

function requireCallId(object: JsonObject): number {
  const call = field(object, 'call');
  if (!Number.isInteger(call) || (call as number) < MIN_CALL_ID || (call as number) > MAX_CALL_ID) {
    throw badField('call', `a call id, an integer ${MIN_CALL_ID}-${MAX_CALL_ID}`, call);
  }
  return call as number;
}

function requireUser(object: JsonObject, name: string): UserRef {
  return userFrom(field(object, name), name);
}

function userFrom(value: unknown, name: string): UserRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badField(name, '{"id": number, "name": string}', value);
  const id = field(value as JsonObject, 'id');
  if (!Number.isInteger(id) || (id as number) < MIN_SESSION_ID || (id as number) > MAX_SESSION_ID) {
    throw badField(`${name}.id`, `a session id ${MIN_SESSION_ID}-${MAX_SESSION_ID}`, id);
  }
  return { id: id as number, name: requireString(value as JsonObject, 'name') };
}

function requireAddress(value: unknown, name: string): UdpAddress {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badField(name, '{"address": string, "port": number}', value);
  const address = requireString(value as JsonObject, 'address');
  // An IP address, never a host name: a client must not be made to look a name up (or send) anywhere else.
  if (isIP(address) === 0) throw badField(`${name}.address`, 'an IPv4 or IPv6 address', address);
  const port = field(value as JsonObject, 'port');
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 0xffff) throw badField(`${name}.port`, 'a port number 1-65535', port);
  return { address, port: port as number };
}
