// Stage 08's per-user request limits share one class (08-calls/request-limit.ts): stage 07's TEXT
// and OFFER, folded onto it, must still say on the wire exactly what stage 07 says (its README's
// numbers, its refusal words, its closing ERROR), so a client written for stage 07 reads the same
// REFUSED. The look-up and invite buckets are tested with the call table (08-calls-calls.test.ts).
import t from 'tap';
import { TextSender, type ChatMember } from '../08-calls/chat.ts';
import { MAX_OFFERS_REFUSED, MAX_TEXTS_REFUSED, OFFER_BURST, OFFER_REFILL_MS, offerFrame, parseRefused, TEXT_BURST, TEXT_REFILL_MS, textFrame } from '../08-calls/chat-messages.ts';
import { FileRelay, OfferGate, type TransferPeer } from '../08-calls/file-relay.ts';
import { MessageType } from '../08-calls/protocol.ts';
import { ChunkScheduler } from '../08-calls/write-scheduler.ts';

const HEADER_BYTES = 5;
const EMPTY_FILE_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The REFUSED frames among those a user was sent, read back with the protocol's parser. */
function refusals(frames: Buffer[]): { request: string; code: string; message: string }[] {
  return frames.filter((frame) => frame[0] === MessageType.refused).map((frame) => parseRefused(frame.subarray(HEADER_BYTES)));
}

/** Sends until the limit closes the connection: the refusals in between, and the closing error. */
function flood(send: () => void, sentTo: Buffer[]): { refused: ReturnType<typeof refusals>; error: unknown } {
  for (let i = 0; i < 100; i++) {
    try {
      send();
    } catch (error) {
      return { refused: refusals(sentTo), error };
    }
  }
  return { refused: refusals(sentTo), error: null };
}

t.test('TEXT: 10 at once, then REFUSED rate_limited in stage 07\'s words; the 20th refusal in a row is ERROR rate_limited', async (t) => {
  t.same([TEXT_BURST, TEXT_REFILL_MS, MAX_TEXTS_REFUSED], [10, 1000, 20], 'stage 07\'s numbers');
  const member = (id: number, name: string): ChatMember & { sent: Buffer[] } => {
    const sent: Buffer[] = [];
    return { id, name, sent, sendControl: (frame) => sent.push(frame) };
  };
  const ada = member(1, 'Ada');
  const bob = member(2, 'Bob');
  const texts = new TextSender();
  const payload = textFrame('hello').subarray(HEADER_BYTES);
  const { refused, error } = flood(() => texts.handle(ada, payload, [ada, bob]), ada.sent);
  t.equal(bob.sent.filter((frame) => frame[0] === MessageType.text).length, 10, 'the burst reaches the room');
  t.equal(refused.length, 19, '19 refusals, then the error');
  for (const refusal of refused) {
    t.match(refusal, { request: 'text', code: 'rate_limited', message: /^at most 10 messages at once, then 1 every 1 s; try again in \d+ ms$/ });
  }
  t.match(error, { code: 'rate_limited', message: '20 TEXT in a row were refused for coming too often; you kept sending them regardless' });
});

t.test('OFFER: 5 at once, then REFUSED rate_limited in stage 07\'s words; the 20th refusal in a row is ERROR rate_limited', async (t) => {
  t.same([OFFER_BURST, OFFER_REFILL_MS, MAX_OFFERS_REFUSED], [5, 5000, 20], 'stage 07\'s numbers');
  const peer = (id: number, name: string): TransferPeer & { sent: Buffer[] } => {
    const sent: Buffer[] = [];
    const sendControl = (frame: Buffer) => sent.push(frame);
    const chunks = new ChunkScheduler((frame, flushed) => (sendControl(frame), flushed()), sendControl);
    return { id, name, room: 'lobby', sent, sendControl, chunks, sending: new Map(), recentlyEnded: [], receiving: new Map() };
  };
  const ada = peer(1, 'Ada');
  const bob = peer(2, 'Bob');
  const relay = new FileRelay();
  t.teardown(() => relay.stop());
  const offers = new OfferGate();
  // Empty files end complete at once, so the 2-transfers-per-sender rule never stands in the way.
  const payload = offerFrame({ name: 'empty.txt', size: 0, sha256: EMPTY_FILE_SHA256 }).subarray(HEADER_BYTES);
  const { refused, error } = flood(() => offers.handle(ada, payload, [ada, bob], relay), ada.sent);
  t.equal(bob.sent.filter((frame) => frame[0] === MessageType.offer).length, 5, 'the burst is offered to the room');
  t.equal(refused.length, 19, '19 refusals, then the error');
  for (const refusal of refused) {
    t.match(refusal, { request: 'offer', code: 'rate_limited', message: /^at most 5 offers at once, then 1 every 5 s; try again in \d+ ms$/ });
  }
  t.match(error, { code: 'rate_limited', message: '20 OFFER in a row were refused for coming too often; you kept sending them regardless' });
});
