// The u16 id rule that stage 07's transfer ids and stage 08's call ids share with session ids:
// 1-65535, handed out in increasing order, skipping ids in use, wrapping from 65535 to 1. Seeing the
// wrap and the skip takes 65 535 ids, and a connection gets only 5 (its request bucket: 5 OFFERs or
// 5 INVITEs, then one per 5 or 10 s), so a check runs ~13 100 short connections, many at once (the
// reference hands out ~10 000 transfer ids a second on a busy 2-core machine).
//
// Where nothing special happens, batches of connections run in parallel and only the set of ids is
// compared with the rule's (their order across connections is the scheduler's); around the wrap and
// around the held id, connections run one at a time and every id must be exactly the rule's next.
import { expect } from './checks.ts';

export const MIN_ID = 1;
export const MAX_ID = 0xffff;

/** The rule's id after `id`, skipping `inUse`. */
export function idAfter(id: number, inUse: ReadonlySet<number>): number {
  let next = id;
  do next = next === MAX_ID ? MIN_ID : next + 1;
  while (inUse.has(next));
  return next;
}

/**
 * An id that fails the check whatever comes next (outside 1-65535, or the held one): a connection
 * that got it returns its ids at once, as going on with it (a HANGUP of call 65536, say) may only
 * end in a less telling failure.
 */
export function plainlyWrong(id: unknown, heldId: number): boolean {
  return !(Number.isInteger(id) && (id as number) >= MIN_ID && (id as number) <= MAX_ID) || id === heldId;
}

export interface IdWrapPlan {
  /** "transfer id", "call id": for failure messages. */
  what: string;
  /** An id the check keeps in use from before the first connection until after the last. */
  heldId: number;
  /** How many ids one connection takes (the request bucket's burst). */
  idsPerConnection: number;
  /**
   * Runs one short connection (number `index`) and returns the ids it was handed, in order. `lane`
   * (0 to parallel - 1) is never shared by two connections at once: a room or a callee of its own.
   */
  takeIds(index: number, lane: number): Promise<number[]>;
  /** Connections at once in the parallel stretches (lanes). */
  parallel: number;
  /** The README's rule, in the stage's words. */
  hint: string;
  /** How the held id's transfer or call ended, if it did (then its id may come again: the check cannot judge). */
  heldEnded(): string | undefined;
}

/** Connections run one at a time this many ids before and after the wrap and the skip. */
const EXACT_MARGIN_IDS = 20;

/**
 * Takes ids until the server has wrapped from 65535 and come back around to the held id, and
 * fails the check unless every id is the rule's: the one after the held id first, each after the
 * one before, 1 after 65535, never the held id, and the held id's successor where it would come.
 */
export async function checkIdWrap(plan: IdWrapPlan): Promise<void> {
  const inUse = new Set([plan.heldId]);
  // The rule's sequence from the id after the held one until just past its skip, the second time
  // round: the wrap from 65535 to 1 lies on the way (at the start when the held id is 65535).
  const expected: number[] = [];
  for (let id = idAfter(plan.heldId, inUse); ; id = idAfter(id, inUse)) {
    expected.push(id);
    if (expected.length >= MAX_ID - 1 + EXACT_MARGIN_IDS && expected.length % plan.idsPerConnection === 0) break;
  }
  // Positions whose id is not the one before plus one (the wrap, the skip): judged one by one.
  const exact = new Set<number>();
  expected.forEach((id, i) => {
    if (i > 0 && id !== expected[i - 1]! + 1) for (let j = i - EXACT_MARGIN_IDS; j < i + EXACT_MARGIN_IDS; j++) exact.add(j);
  });
  const perConnection = plan.idsPerConnection;
  const connections = Math.ceil(expected.length / perConnection);
  const isExact = (connection: number) => [...Array(perConnection).keys()].some((k) => exact.has(connection * perConnection + k));

  let connection = 0;
  while (connection < connections) {
    if (isExact(connection)) {
      const from = connection * perConnection;
      const ids = await plan.takeIds(connection, 0);
      judgeExact(plan, expected, from, ids);
      connection++;
      continue;
    }
    let end = connection;
    while (end < connections && !isExact(end)) end++;
    const from = connection * perConnection;
    const taken = await takeInParallel(plan, connection, end);
    judgeBatch(plan, expected.slice(from, end * perConnection), taken);
    connection = end;
  }
}

async function takeInParallel(plan: IdWrapPlan, first: number, end: number): Promise<number[]> {
  const taken: number[] = [];
  let next = first;
  const worker = async (lane: number) => {
    try {
      while (next < end) taken.push(...(await plan.takeIds(next++, lane)));
    } catch (error) {
      next = end; // the other workers stop too: the check has failed
      throw error;
    }
  };
  await Promise.all(Array.from({ length: Math.min(plan.parallel, end - first) }, (_, lane) => worker(lane)));
  return taken;
}

const show = (ids: number[], max = 8) => (ids.length === 0 ? 'none' : ids.slice(0, max).join(', ') + (ids.length > max ? ` and ${ids.length - max} more` : ''));

function judgeId(plan: IdWrapPlan, id: number, context: string): void {
  expect(Number.isInteger(id) && id >= MIN_ID && id <= MAX_ID, `a ${plan.what} was ${id}, outside 1-65535 (u16, never 0)`, {
    expected: `every ${plan.what} 1-65535: after 65535 comes the lowest free id, 1 unless it is in use`,
    actual: `${id}, ${context}`,
    hint: plan.hint,
  });
  const ended = id === plan.heldId ? plan.heldEnded() : undefined;
  expect(ended === undefined, `the ${plan.what} ${plan.heldId} kept in use by the check ended before its id came round again: ${ended}`, {
    expected: `${plan.what} ${plan.heldId} in use until the check ends it`,
    actual: `it ended (${ended}); ${id} handed out again, ${context}`,
    hint: plan.hint,
  });
  expect(id !== plan.heldId, `${plan.what} ${id} was handed out again while it was still in use`, {
    expected: `${plan.what} ${plan.heldId} skipped: it was in use all along`,
    actual: `${id} handed out again, ${context}`,
    hint: plan.hint,
  });
}

/** One connection's ids, taken alone: exactly the rule's next ones. */
function judgeExact(plan: IdWrapPlan, expected: number[], from: number, ids: number[]): void {
  const want = expected.slice(from, from + ids.length);
  ids.forEach((id, k) => {
    const position = from + k;
    const before = position === 0 ? plan.heldId : expected[position - 1]!;
    const context = `the ${plan.what} handed out after ${before} (${position + 1} ids after ${plan.heldId}, the id kept in use; one connection at a time)`;
    judgeId(plan, id, context);
    const wrapped = before === MAX_ID;
    const skipped = want[k] !== before + 1 && !wrapped;
    expect(id === want[k], `after ${plan.what} ${before} came ${id}, not ${want[k]}${wrapped ? ': the wrap from 65535 is wrong' : skipped ? `: ${plan.heldId}, in use, is skipped` : ''}`, {
      expected: `${want[k]}${wrapped ? ' (u16: after 65535 comes the lowest free id)' : skipped ? ` (${plan.heldId} is in use)` : ''}`,
      actual: `${id}, ${context}; that connection got ${ids.join(', ')}`,
      hint: plan.hint,
    });
  });
}

/** Ids taken by many connections at once: the same set as the rule's, in whatever order. */
function judgeBatch(plan: IdWrapPlan, want: number[], taken: number[]): void {
  const context = `in a batch of ${want.length} ${plan.what}s taken by ${plan.parallel} connections at once, expected ${want[0]} to ${want.at(-1)}`;
  for (const id of taken) judgeId(plan, id, context);
  const counts = new Map<number, number>();
  for (const id of want) counts.set(id, (counts.get(id) ?? 0) + 1);
  const unexpected: number[] = [];
  for (const id of taken) {
    const left = counts.get(id) ?? 0;
    if (left === 0) unexpected.push(id);
    else counts.set(id, left - 1);
  }
  const missing = [...counts].filter(([, left]) => left > 0).map(([id]) => id);
  expect(unexpected.length === 0 && missing.length === 0, `the ${plan.what}s from ${want[0]} on are not the next ${want.length} in order`, {
    expected: `the ${want.length} ids ${want[0]} to ${want.at(-1)}, each once (${plan.heldId} in use, skipped)`,
    actual: `missing: ${show(missing.sort((a, b) => a - b))}; not expected (or twice): ${show(unexpected.sort((a, b) => a - b))}`,
    hint: plan.hint,
  });
}
