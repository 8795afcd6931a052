// A ProtocolError means "the peer broke the protocol": a frame of an unknown type,
// a payload too large, a control message that is not valid JSON... The usual
// reaction is to log it and close that one connection, never to crash the server.
//
// `code` is a STABLE snake_case identifier that tests and programs can match on
// (messages are for humans and may be reworded). It is a plain string because
// each stage adds its own codes next to the framing ones below.

export class ProtocolError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

/** The codes raised by shared/framing/. */
export const FRAMING_ERROR_CODES = {
  /** The frame's type byte is not one this side understands. */
  UNKNOWN_TYPE: 'unknown_type',
  /** The header declares a payload longer than that type allows. */
  FRAME_TOO_LARGE: 'frame_too_large',
  /** A control payload is not valid UTF-8. */
  BAD_UTF8: 'bad_utf8',
  /** A control payload is not JSON, or is JSON but not an object. */
  BAD_JSON: 'bad_json',
  /** A field of a control message is missing or has the wrong type. */
  BAD_FIELD: 'bad_field',
} as const;
