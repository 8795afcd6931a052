// Stage 07's new messages: text chat (TEXT, REFUSED) and file transfers (OFFER, OFFERED, CHUNK,
// ACK, CREDIT, CANCEL, TRANSFER_END). Encoders and parsers for both directions, and the text and
// file name rules. README.md has the tables and byte layouts; the numbers are in chat-limits.ts.
//
//   0x0F TEXT         client -> server  {"text": string, "to"?: session id}
//                     server -> client  {"from": {"id","name"}, "text": string, "to"?: {"id","name"}}
//   0x10 REFUSED      server -> client  {"request": "text" | "offer", "code": string, "message": string}
//   0x11 OFFER        client -> server  {"name": string, "size": number, "sha256": 64 hex, "to"?: session id}
//                     server -> client  {"transfer", "from": {"id","name"}, "name", "size", "sha256", "private"}
//   0x12 OFFERED      server -> client  {"transfer", "name", "size", "sha256", "receivers": [{"id","name"}]}
//   0x13 CHUNK        both ways         transfer u16 BE | offset u32 BE | 1-16384 bytes of the file
//   0x14 ACK          client -> server  transfer u16 BE | received u32 BE
//   0x15 CREDIT       server -> client  transfer u16 BE | until u32 BE
//   0x16 CANCEL       client -> server  {"transfer": number}
//   0x17 TRANSFER_END server -> client  {"transfer", "result", "message", ...}
import { FRAME_HEADER_BYTES, writeFrameHeader } from '#shared/framing/frame-encoder.ts';
import { decodeJsonObject, encodeJsonFrame, type JsonObject, requireString } from '#shared/framing/json-payload.ts';
import { FRAMING_ERROR_CODES, ProtocolError } from '#shared/protocol-error.ts';
import { FORBIDDEN_IN_NAMES } from '#shared/user-name.ts';
import {
  ACK_PAYLOAD_BYTES,
  CHUNK_HEADER_BYTES,
  CREDIT_PAYLOAD_BYTES,
  MAX_CHUNK_DATA_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_TEXT_CHARS,
  MAX_TRANSFER_ID,
  MIN_CHUNK_PAYLOAD_BYTES,
  MIN_TRANSFER_ID,
} from './chat-limits.ts';
import { ErrorCode, MAX_SESSION_ID, MIN_SESSION_ID, MessageType, type UserRef } from './protocol.ts';

export * from './chat-limits.ts';

/**
 * What REFUSED answers: every TEXT gets its echo or one REFUSED, every OFFER OFFERED or one
 * REFUSED, in order; stage 08: every INVITE RINGING, CALL_START (glare) or one REFUSED, every
 * LOOKUP FOUND or one REFUSED.
 */
export type RefusedRequest = 'text' | 'offer' | 'invite' | 'lookup';
export const REFUSED_REQUESTS: readonly RefusedRequest[] = ['text', 'offer', 'invite', 'lookup'];

/** How a transfer ended, for you (TRANSFER_END "result"). */
export const TransferResult = {
  complete: 'complete',
  cancelled: 'cancelled',
  senderLeft: 'sender_left',
  moved: 'moved',
  tooSlow: 'too_slow',
  hashMismatch: 'hash_mismatch',
  senderStalled: 'sender_stalled',
  noReceivers: 'no_receivers',
} as const;
export type TransferResult = (typeof TransferResult)[keyof typeof TransferResult];

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;
/** SHA-256 of no bytes: a file of size 0 ends complete right after its OFFERs. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// ---------------------------------------------------------------- rules

/** Why `text` is not a chat line the server relays (REFUSED bad_text), or null when it is. */
export function textProblem(text: string): string | null {
  const chars = [...text].length;
  if (chars === 0) return 'the text is empty';
  if (chars > MAX_TEXT_CHARS) return `the text is ${chars} characters long; at most ${MAX_TEXT_CHARS} are allowed (send longer things as a file)`;
  if (text.trim() === '') return 'the text is only spaces';
  if (FORBIDDEN_IN_NAMES.test(text)) return 'the text contains a control, line-separator or bidirectional-override character';
  return null;
}

/**
 * Why `name` is not a file name the server offers (REFUSED bad_file_name), or null. A receiving
 * client never relies on this: it makes every name safe itself.
 */
export function fileNameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return 'the file name is empty';
  if (bytes > MAX_FILE_NAME_BYTES) return `the file name is ${bytes} bytes of UTF-8; at most ${MAX_FILE_NAME_BYTES} are allowed`;
  if (FORBIDDEN_IN_NAMES.test(name)) return 'the file name contains a control, line-separator or bidirectional-override character';
  if (name.includes('/') || name.includes('\\')) return 'a file name may not contain "/" or "\\" (it is a name, not a path)';
  if (name === '.' || name === '..') return `"${name}" is not a file name`;
  return null;
}

// ---------------------------------------------------------------- client -> server

export interface TextRequest {
  text: string;
  to?: number;
}

export interface OfferRequest {
  name: string;
  size: number;
  sha256: string;
  to?: number;
}

export function textFrame(text: string, to?: number): Buffer {
  return encodeJsonFrame(MessageType.text, to === undefined ? { text } : { text, to });
}

export function offerFrame({ name, size, sha256, to }: OfferRequest): Buffer {
  return encodeJsonFrame(MessageType.offer, to === undefined ? { name, size, sha256 } : { name, size, sha256, to });
}

export function cancelFrame(transfer: number): Buffer {
  return encodeJsonFrame(MessageType.cancel, { transfer });
}

/** CHUNK, both directions: transfer u16 | offset u32 | data; one allocation. */
export function chunkFrame(transfer: number, offset: number, data: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + CHUNK_HEADER_BYTES + data.length);
  writeFrameHeader(frame, 0, MessageType.chunk, CHUNK_HEADER_BYTES + data.length);
  frame.writeUInt16BE(transfer, FRAME_HEADER_BYTES);
  frame.writeUInt32BE(offset, FRAME_HEADER_BYTES + 2);
  data.copy(frame, FRAME_HEADER_BYTES + CHUNK_HEADER_BYTES);
  return frame;
}

/** What the server sends receivers for a sender's CHUNK payload: the same bytes, in a frame built once. */
export function relayedChunkFrame(chunkPayload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + chunkPayload.length);
  writeFrameHeader(frame, 0, MessageType.chunk, chunkPayload.length);
  chunkPayload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export function ackFrame(transfer: number, received: number): Buffer {
  return counterFrame(MessageType.ack, transfer, received);
}

// ---------------------------------------------------------------- server -> client

export function serverTextFrame(from: UserRef, text: string, to?: UserRef): Buffer {
  const object: JsonObject = { from: userJson(from), text };
  if (to !== undefined) object.to = userJson(to);
  return encodeJsonFrame(MessageType.text, object);
}

export function refusedFrame(request: RefusedRequest, code: ErrorCode, message: string): Buffer {
  return encodeJsonFrame(MessageType.refused, { request, code, message });
}

export interface TransferOffer {
  transfer: number;
  from: UserRef;
  name: string;
  size: number;
  sha256: string;
  private: boolean;
}

export function serverOfferFrame(offer: TransferOffer): Buffer {
  return encodeJsonFrame(MessageType.offer, {
    transfer: offer.transfer,
    from: userJson(offer.from),
    name: offer.name,
    size: offer.size,
    sha256: offer.sha256,
    private: offer.private,
  });
}

export interface Offered {
  transfer: number;
  name: string;
  size: number;
  sha256: string;
  receivers: UserRef[];
}

export function offeredFrame(offered: Offered): Buffer {
  return encodeJsonFrame(MessageType.offered, {
    transfer: offered.transfer,
    name: offered.name,
    size: offered.size,
    sha256: offered.sha256,
    receivers: offered.receivers.map(userJson),
  });
}

export function creditFrame(transfer: number, until: number): Buffer {
  return counterFrame(MessageType.credit, transfer, until);
}

export interface TransferEnd {
  transfer: number;
  result: TransferResult;
  message: string;
  /** cancelled: who cancelled. */
  by?: UserRef;
  /** complete, to the sender: receivers that acknowledged every byte, and those dropped or gone. */
  delivered?: number;
  dropped?: number;
}

export function transferEndFrame(end: TransferEnd): Buffer {
  const object: JsonObject = { transfer: end.transfer, result: end.result, message: end.message };
  if (end.by !== undefined) object.by = userJson(end.by);
  if (end.delivered !== undefined) object.delivered = end.delivered;
  if (end.dropped !== undefined) object.dropped = end.dropped;
  return encodeJsonFrame(MessageType.transferEnd, object);
}

// ---------------------------------------------------------------- parsing (server side)

/** A client's TEXT. Fields of the wrong type: bad_field (an ERROR: a broken client). The text rule is the caller's (REFUSED). */
export function parseClientText(payload: Buffer): TextRequest {
  const object = decodeJsonObject(payload);
  const text = requireString(object, 'text');
  const to = optionalId(object, 'to');
  return to === undefined ? { text } : { text, to };
}

/** A client's OFFER: name a string, size an integer >= 0, sha256 64 lowercase hex digits, to absent or 1-65535. */
export function parseClientOffer(payload: Buffer): OfferRequest {
  const object = decodeJsonObject(payload);
  const name = requireString(object, 'name');
  const size = field(object, 'size');
  if (!Number.isSafeInteger(size) || (size as number) < 0) throw badField('size', 'an integer >= 0', size);
  const sha256 = field(object, 'sha256');
  if (typeof sha256 !== 'string' || !SHA256_PATTERN.test(sha256)) throw badField('sha256', '64 lowercase hex digits', sha256);
  const to = optionalId(object, 'to');
  const offer: OfferRequest = { name, size: size as number, sha256 };
  if (to !== undefined) offer.to = to;
  return offer;
}

/** A CANCEL's transfer id (an integer 1-65535, else bad_field). */
export function parseCancel(payload: Buffer): number {
  const transfer = optionalId(decodeJsonObject(payload), 'transfer');
  if (transfer === undefined) throw badField('transfer', `a transfer id ${MIN_TRANSFER_ID}-${MAX_TRANSFER_ID}`, undefined);
  return transfer;
}

export interface Chunk {
  transfer: number;
  offset: number;
  /** A view of the payload, not a copy. */
  data: Buffer;
}

/** A CHUNK payload (7-16 390 bytes), either direction. Throws bad_chunk when shorter or longer. */
export function parseChunk(payload: Buffer): Chunk {
  if (payload.length < MIN_CHUNK_PAYLOAD_BYTES || payload.length > CHUNK_HEADER_BYTES + MAX_CHUNK_DATA_BYTES) {
    throw new ProtocolError(ErrorCode.badChunk, `CHUNK carries ${payload.length} bytes; it must be ${MIN_CHUNK_PAYLOAD_BYTES}-${CHUNK_HEADER_BYTES + MAX_CHUNK_DATA_BYTES} (transfer, offset and 1-${MAX_CHUNK_DATA_BYTES} bytes of the file)`);
  }
  return { transfer: payload.readUInt16BE(0), offset: payload.readUInt32BE(2), data: payload.subarray(CHUNK_HEADER_BYTES) };
}

/** An ACK payload (exactly 6 bytes, else bad_ack): the transfer and the bytes received so far. */
export function parseAck(payload: Buffer): { transfer: number; received: number } {
  if (payload.length !== ACK_PAYLOAD_BYTES) throw new ProtocolError(ErrorCode.badAck, `ACK carries ${payload.length} bytes; it must be exactly ${ACK_PAYLOAD_BYTES} (transfer u16, received u32)`);
  return { transfer: payload.readUInt16BE(0), received: payload.readUInt32BE(2) };
}

// ---------------------------------------------------------------- parsing (client side)

/** A CREDIT payload (exactly 6 bytes, else bad_field). */
export function parseCredit(payload: Buffer): { transfer: number; until: number } {
  if (payload.length !== CREDIT_PAYLOAD_BYTES) throw new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, `CREDIT carries ${payload.length} bytes; it must be exactly ${CREDIT_PAYLOAD_BYTES}`);
  return { transfer: payload.readUInt16BE(0), until: payload.readUInt32BE(2) };
}

/** A TEXT from the server: who wrote it (set by the server), the line, and to whom when private. */
export function parseServerText(payload: Buffer): { from: UserRef; text: string; to?: UserRef } {
  const object = decodeJsonObject(payload);
  const message: { from: UserRef; text: string; to?: UserRef } = { from: requireUser(object, 'from'), text: requireString(object, 'text') };
  if (Object.hasOwn(object, 'to')) message.to = requireUser(object, 'to');
  return message;
}

export function parseRefused(payload: Buffer): { request: RefusedRequest; code: string; message: string } {
  const object = decodeJsonObject(payload);
  const request = field(object, 'request');
  if (typeof request !== 'string' || !(REFUSED_REQUESTS as string[]).includes(request)) throw badField('request', '"text", "offer", "invite" or "lookup"', request);
  return { request: request as RefusedRequest, code: requireString(object, 'code'), message: requireString(object, 'message') };
}

export function parseServerOffer(payload: Buffer): TransferOffer {
  const object = decodeJsonObject(payload);
  const isPrivate = field(object, 'private');
  if (typeof isPrivate !== 'boolean') throw badField('private', 'a boolean', isPrivate);
  return { transfer: requireTransferId(object), from: requireUser(object, 'from'), ...requireFile(object), private: isPrivate };
}

export function parseOffered(payload: Buffer): Offered {
  const object = decodeJsonObject(payload);
  const receivers = field(object, 'receivers');
  if (!Array.isArray(receivers)) throw badField('receivers', 'an array of {"id", "name"}', receivers);
  return { transfer: requireTransferId(object), ...requireFile(object), receivers: receivers.map((entry: unknown) => userFrom(entry, 'receivers')) };
}

export function parseTransferEnd(payload: Buffer): TransferEnd {
  const object = decodeJsonObject(payload);
  const result = field(object, 'result');
  if (typeof result !== 'string' || !(Object.values(TransferResult) as string[]).includes(result)) {
    throw badField('result', `one of ${Object.values(TransferResult).join(', ')}`, result);
  }
  const end: TransferEnd = { transfer: requireTransferId(object), result: result as TransferResult, message: requireString(object, 'message') };
  if (Object.hasOwn(object, 'by')) end.by = requireUser(object, 'by');
  for (const count of ['delivered', 'dropped'] as const) {
    const value = field(object, count);
    if (value === undefined) continue;
    if (!Number.isInteger(value) || (value as number) < 0) throw badField(count, 'an integer >= 0', value);
    end[count] = value as number;
  }
  return end;
}

// ---------------------------------------------------------------- helpers

function counterFrame(type: number, transfer: number, value: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 6);
  writeFrameHeader(frame, 0, type, 6);
  frame.writeUInt16BE(transfer, FRAME_HEADER_BYTES);
  frame.writeUInt32BE(value, FRAME_HEADER_BYTES + 2);
  return frame;
}

function userJson(user: UserRef): JsonObject {
  return { id: user.id, name: user.name };
}

function field(object: JsonObject, name: string): unknown {
  return Object.hasOwn(object, name) ? object[name] : undefined;
}

function badField(name: string, expected: string, value: unknown): ProtocolError {
  return new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, `field "${name}" must be ${expected}, got ${JSON.stringify(value)?.slice(0, 64) ?? 'nothing'}`);
}

function optionalId(object: JsonObject, name: string): number | undefined {
  const value = field(object, name);
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || (value as number) < MIN_SESSION_ID || (value as number) > MAX_SESSION_ID) {
    throw badField(name, `an integer ${MIN_SESSION_ID}-${MAX_SESSION_ID}`, value);
  }
  return value as number;
}

function requireTransferId(object: JsonObject): number {
  const id = optionalId(object, 'transfer');
  if (id === undefined) throw badField('transfer', `a transfer id ${MIN_TRANSFER_ID}-${MAX_TRANSFER_ID}`, undefined);
  return id;
}

function requireFile(object: JsonObject): { name: string; size: number; sha256: string } {
  const size = field(object, 'size');
  if (!Number.isSafeInteger(size) || (size as number) < 0) throw badField('size', 'an integer >= 0', size);
  const sha256 = field(object, 'sha256');
  if (typeof sha256 !== 'string' || !SHA256_PATTERN.test(sha256)) throw badField('sha256', '64 lowercase hex digits', sha256);
  return { name: requireString(object, 'name'), size: size as number, sha256 };
}

function requireUser(object: JsonObject, name: string): UserRef {
  return userFrom(field(object, name), name);
}

function userFrom(value: unknown, name: string): UserRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badField(name, '{"id": number, "name": string}', value);
  const id = optionalId(value as JsonObject, 'id');
  if (id === undefined) throw badField(`${name}.id`, 'a session id', undefined);
  return { id, name: requireString(value as JsonObject, 'name') };
}
