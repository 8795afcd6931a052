// Control messages (join, leave, errors...) carry one UTF-8 JSON object as payload.
// These helpers turn bad input from the peer into ProtocolErrors with stable codes,
// so the code handling a message can trust the types it reads.

import { FRAMING_ERROR_CODES, ProtocolError } from '../protocol-error.ts';
import { encodeFrame } from './frame-encoder.ts';

// fatal: true makes invalid UTF-8 throw instead of silently becoming U+FFFD.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export type JsonObject = Record<string, unknown>;

/** Parses a control payload; throws ProtocolError 'bad_utf8' or 'bad_json'. */
export function decodeJsonObject(payload: Buffer): JsonObject {
  let text: string;
  try {
    text = strictUtf8.decode(payload);
  } catch {
    throw new ProtocolError(FRAMING_ERROR_CODES.BAD_UTF8, `control payload of ${payload.length} bytes is not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ProtocolError(FRAMING_ERROR_CODES.BAD_JSON, `control payload is not valid JSON: ${reason}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(FRAMING_ERROR_CODES.BAD_JSON, `control payload must be a JSON object, got ${describe(value)}`);
  }
  return value as JsonObject;
}

/** One frame whose payload is `object` as UTF-8 JSON. */
export function encodeJsonFrame(type: number, object: JsonObject): Buffer {
  return encodeFrame(type, JSON.stringify(object));
}

/** Reads a string field that must be present. */
export function requireString(obj: JsonObject, field: string): string {
  const value = ownField(obj, field);
  if (typeof value !== 'string') throw badField(field, 'a string', value);
  return value;
}

// Own properties only: a message without "toString" must not "have" Object.prototype.toString.
function ownField(obj: JsonObject, field: string): unknown {
  return Object.hasOwn(obj, field) ? obj[field] : undefined;
}

function badField(field: string, expected: string, value: unknown): ProtocolError {
  return new ProtocolError(FRAMING_ERROR_CODES.BAD_FIELD, `field "${field}" must be ${expected}, got ${describe(value)}`);
}

/** A short name for a JSON value's kind, for error messages. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing (missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`; // string, boolean
}
