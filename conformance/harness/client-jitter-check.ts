// A client check shared by the stages whose client plays room voice through stage 05's jitter
// buffer (05, and 06's, kept by 07 and 08; README "Receiving": at most 8 packets wait per speaker,
// one more drops the OLDEST). A burst after a network hiccup must therefore cost at most 160 ms of
// delay: of 20 packets arriving at once at a client already playing that speaker, only the newest
// 8 are played. A bigger buffer plays them all, and every packet more than 8 keeps the speaker
// 20 ms later for the rest of the talk spurt.
//
// How: the speaker first talks at real time (a 300 Hz tone, so the client is playing), then 20
// packets come at once, each a tone of its own frequency, and nothing after. The client's --output
// WAV, read 20 ms at a time (a client writes one frame per tick from the start), names each burst
// packet it played by its frequency. A tick that falls while the burst is still being read may
// take one packet more, so 8 + 1 are accepted.
import { FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '#shared/audio/format.ts';
import { createOpusEncoder } from '#shared/codec/opus.ts';
import { expect, type Check, type CheckContext } from './checks.ts';
import { levelDb } from './opus-voice.ts';

/** The README's cap on packets waiting per speaker. */
const MAX_WAITING_PACKETS = 8;
const LEAD_PACKETS = 30;
const BURST_PACKETS = 20;
const LEAD_HZ = 300;
/** Burst packet i (0-based) is a tone of this frequency: far enough apart to tell in 12 ms. */
const burstHz = (i: number) => 500 + 150 * i;
/** Of each played 20 ms, the part decoded from its own packet only (Opus's 6.5 ms look-ahead carries the one before into its start). */
const JUDGED_FROM = 400;
/** Quieter than this a 20 ms is silence or fading concealment, not a packet played. */
const PLAYED_DB = -30;

/** One packet of the speaker: its sequence number and Opus bytes. */
export interface SpeakerPacket {
  sequence: number;
  packet: Buffer;
}

/**
 * Runs the client under test with --output a WAV while the stage's fake server sends `steps`
 * (each the packets of one 20 ms, sent together, the first few at once as usual) from speaker
 * `speaker`, a room-mate; returns the recording's samples.
 */
export type PlaySteps = (context: CheckContext, speaker: { id: number; name: string }, steps: SpeakerPacket[][]) => Promise<Int16Array>;

/**
 * A speaker who says one tone per packet: packetAt(hz) encodes the next 20 ms at that frequency,
 * all in one stream (one encoder, the phase carried on), as a speaker's encoder would.
 */
export function toneSpeaker(): (hz: number) => Buffer {
  const encoder = createOpusEncoder({ bitrate: 24_000 });
  let phase = 0;
  return (hz) => {
    const frame = Buffer.alloc(FRAME_BYTES);
    for (let s = 0; s < FRAME_SAMPLES; s++) {
      phase += (2 * Math.PI * hz) / SAMPLE_RATE;
      frame.writeInt16LE(Math.round(0.3 * 32_767 * Math.sin(phase)), s * 2);
    }
    return encoder.encode(frame);
  };
}

/** The lead (one packet a step), then the burst (all in one step). */
function speakerSteps(): SpeakerPacket[][] {
  const packetAt = toneSpeaker();
  const lead = Array.from({ length: LEAD_PACKETS }, (_, i) => [{ sequence: 1_000 + i, packet: packetAt(LEAD_HZ) }]);
  const burst = Array.from({ length: BURST_PACKETS }, (_, i) => ({ sequence: 1_000 + LEAD_PACKETS + i, packet: packetAt(burstHz(i)) }));
  return [...lead, burst];
}

/** Power of `hz` in samples[from, to) (Goertzel), normalised by their count. */
function powerAt(samples: Int16Array, from: number, to: number, hz: number): number {
  const coefficient = 2 * Math.cos((2 * Math.PI * hz) / SAMPLE_RATE);
  let previous = 0;
  let beforePrevious = 0;
  for (let i = from; i < to; i++) {
    const current = samples[i]! + coefficient * previous - beforePrevious;
    beforePrevious = previous;
    previous = current;
  }
  return (previous * previous + beforePrevious * beforePrevious - coefficient * previous * beforePrevious) / (to - from);
}

/**
 * Per 20 ms of the recording (a client writes one frame per tick from its start): the index in
 * `candidates` of the strongest of those tones, or null for silence.
 */
export function strongestTones(played: Int16Array, candidates: number[]): (number | null)[] {
  const blocks: (number | null)[] = [];
  for (let start = 0; start + FRAME_SAMPLES <= played.length; start += FRAME_SAMPLES) {
    if (levelDb(played, start + JUDGED_FROM, FRAME_SAMPLES - JUDGED_FROM) < PLAYED_DB) {
      blocks.push(null);
      continue;
    }
    const powers = candidates.map((hz) => powerAt(played, start + JUDGED_FROM, start + FRAME_SAMPLES, hz));
    blocks.push(powers.indexOf(Math.max(...powers)));
  }
  return blocks;
}

/** Per 20 ms of the recording: which burst packet (1-based) it plays, 0 for the lead tone, null for silence. */
function playedPackets(played: Int16Array): (number | null)[] {
  return strongestTones(played, [LEAD_HZ, ...Array.from({ length: BURST_PACKETS }, (_, i) => burstHz(i))]);
}

export function clientJitterBufferCheck(play: PlaySteps): Check {
  return {
    name: `client: of ${BURST_PACKETS} packets of a speaker arriving at once while it plays, only the newest ${MAX_WAITING_PACKETS} are played (its jitter buffer holds at most ${MAX_WAITING_PACKETS}: ${MAX_WAITING_PACKETS * FRAME_MS} ms of delay)`,
    subject: 'client',
    async run(context) {
      const played = await play(context, { id: 1, name: 'Bob' }, speakerSteps());
      const blocks = playedPackets(played);
      const heard = [...new Set(blocks.filter((b): b is number => b !== null && b > 0))];
      const story = `the lead: ${LEAD_PACKETS} packets of ${LEAD_HZ} Hz at real time; then burst packets 1-${BURST_PACKETS} at once (packet i a tone of ${burstHz(0)} + 150 × (i - 1) Hz); per 20 ms of the WAV, what played (L: the lead, -: silence): ${blocks.map((b) => (b === null ? '-' : b === 0 ? 'L' : String(b))).join(' ')}`;
      const hint = `keep at most ${MAX_WAITING_PACKETS} packets per speaker; when one more arrives, drop the OLDEST waiting one and play on from the oldest kept (late audio is useless)`;
      expect(blocks.includes(0), 'the client did not play the speaker before the burst, so this check could not judge its jitter buffer', {
        expected: `the ${LEAD_HZ} Hz lead in the --output WAV (${LEAD_PACKETS} packets at real time)`,
        actual: story,
        hint: 'decode each VOICE of a room-mate and write it to --output at your 20 ms clock',
      });
      expect(heard.length <= MAX_WAITING_PACKETS + 1, `the jitter buffer holds more than ${MAX_WAITING_PACKETS} packets: ${heard.length} of a burst of ${BURST_PACKETS} were played`, {
        expected: `at most the newest ${MAX_WAITING_PACKETS} of the burst played (+1 if a tick fell while it was being read): packets ${BURST_PACKETS - MAX_WAITING_PACKETS + 1}-${BURST_PACKETS}`,
        actual: `${heard.length} burst packets played (${heard.join(', ')}): each one more than ${MAX_WAITING_PACKETS} keeps the speaker ${FRAME_MS} ms later; ${story}`,
        hint,
      });
      expect(heard.length >= MAX_WAITING_PACKETS - 1 && heard.includes(BURST_PACKETS), `the jitter buffer does not keep the newest ${MAX_WAITING_PACKETS} packets of a burst`, {
        expected: `the newest ${MAX_WAITING_PACKETS} packets of the burst played (${BURST_PACKETS - MAX_WAITING_PACKETS + 1}-${BURST_PACKETS}; one fewer if a tick fell while it was read)`,
        actual: `burst packets played: ${heard.join(', ') || 'none'}; ${story}`,
        hint,
      });
    },
  };
}
