// Stage 08's numbers for the directory and calls, in one place (README.md's limits table names the
// check behind each). No imports: protocol.ts (frame limits), call-messages.ts (layouts) and the
// server's call table all use them.

// ---------------------------------------------------------------- frame limits

/** Largest LOOKUP or INVITE payload a client may declare (a 32-character name and the JSON around it fit many times over). */
export const MAX_CALL_REQUEST_BYTES = 1024;
/** Largest ACCEPT, DECLINE or HANGUP payload a client may declare (a call id and a flag). */
export const MAX_CALL_ANSWER_BYTES = 256;

// ---------------------------------------------------------------- ids

/** Call ids are u16, 1-65535, increasing, skipping ids in use, wrapping (the session ids' rule). */
export const MIN_CALL_ID = 1;
export const MAX_CALL_ID = 0xffff;

// ---------------------------------------------------------------- rates (issue 18)

/** LOOKUP bucket: 10 at once, then one more per second; a list of every name cannot be pulled out. */
export const LOOKUP_BURST = 10;
export const LOOKUP_REFILL_MS = 1_000;
/** The 20th LOOKUP in a row refused rate_limited (no LOOKUP answered in between) gets ERROR rate_limited. */
export const MAX_LOOKUPS_REFUSED = 20;
/** INVITE bucket: 5 at once, then one more per 10 s (an invite rings a person: a ring flood is harassment). */
export const INVITE_BURST = 5;
export const INVITE_REFILL_MS = 10_000;
/** The 20th INVITE in a row refused rate_limited gets ERROR rate_limited. */
export const MAX_INVITES_REFUSED = 20;

// ---------------------------------------------------------------- timing

/** A call rings this long before CALL_END no_answer; the server's --ring-timeout S changes it. */
export const DEFAULT_RING_TIMEOUT_S = 30;
/**
 * The guard: for this long after CALL_START and after CALL_END the server forwards no voice of
 * either party, by either path, so a datagram of the room still in flight never reaches the call,
 * nor one of the call the room. (The client sends no room voice for as long after CALL_END.)
 */
export const CALL_GUARD_MS = 1_000;
