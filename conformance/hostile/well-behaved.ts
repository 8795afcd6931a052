// The few frames a well-behaved user sends.
import { frame } from './frames.ts';
import { AUDIO, BYE } from './wire-spec.ts';

export const bye = () => frame(BYE);

/** One AUDIO frame whose samples all hold `value`: easy to recognise in a mix. */
export function constantAudio(value: number): Buffer {
  const pcm = Buffer.alloc(1920);
  for (let i = 0; i < 960; i++) pcm.writeInt16LE(value, i * 2);
  return frame(AUDIO, pcm);
}
