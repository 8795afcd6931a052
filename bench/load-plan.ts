// Who the load generator's users are: names, rooms of K, and which of them talk.

export interface LoadPlan {
  clients: number;
  roomSize: number;
  /** Fraction of the clients that talk, 0..1; talkers are spread evenly over the rooms. */
  talking: number;
}

export interface PlannedUser {
  name: string;
  room: string;
  talks: boolean;
}

/** Room ids look like real ones ("bench-0007"); the probe's room is apart from them. */
export function loadRoomId(index: number): string {
  return `bench-${String(index).padStart(4, '0')}`;
}

export function planUsers(plan: LoadPlan): PlannedUser[] {
  return Array.from({ length: plan.clients }, (_, i) => ({
    name: `user-${i}`,
    room: loadRoomId(Math.floor(i / plan.roomSize)),
    // Bresenham-style spread: exactly round(talking * clients) talkers, evenly interleaved.
    talks: Math.floor((i + 1) * plan.talking + 1e-9) > Math.floor(i * plan.talking + 1e-9),
  }));
}
