// Text chat in rooms: a TEXT is stamped by the server with the sender's id and name (a client
// cannot write under another name), checked against the text rule, rate-limited per user (issue
// 18: a line notifies the whole room), and sent to every member of the sender's room, the sender
// included (the echo that confirms it), or to one member and the sender. Never to another room.
import { MAX_TEXTS_REFUSED, parseClientText, refusedFrame, serverTextFrame, TEXT_BURST, TEXT_REFILL_MS, textProblem } from './chat-messages.ts';
import { ErrorCode, type UserRef } from './protocol.ts';
import { RequestLimit } from './request-limit.ts';

export interface ChatMember extends UserRef {
  sendControl(frame: Buffer): void;
}

/** One user's text sending: their bucket and how many TEXT in a row were refused rate_limited. */
export class TextSender {
  private readonly limit = new RequestLimit('TEXT', TEXT_BURST, TEXT_REFILL_MS, MAX_TEXTS_REFUSED, { plural: 'messages' });

  /**
   * Handles one TEXT payload from `sender`, whose room's members (sender included) are `room`.
   * Check order: fields (ERROR bad_field), the text rule (REFUSED bad_text), "to"
   * (REFUSED no_such_member), the token (REFUSED rate_limited; the MAX_TEXTS_REFUSED-th in a row:
   * ERROR rate_limited). Refusals for bad_text and no_such_member take no token: they notify nobody.
   */
  handle(sender: ChatMember, payload: Buffer, room: Iterable<ChatMember>): void {
    const request = parseClientText(payload);
    const problem = textProblem(request.text);
    if (problem !== null) {
      sender.sendControl(refusedFrame('text', ErrorCode.badText, problem));
      return;
    }
    let to: ChatMember | undefined;
    if (request.to !== undefined) {
      for (const member of room) if (member.id === request.to && member !== sender) to = member;
      if (to === undefined) {
        sender.sendControl(refusedFrame('text', ErrorCode.noSuchMember, `nobody else in your room has id ${request.to}`));
        return;
      }
    }
    if (!this.limit.take()) {
      sender.sendControl(refusedFrame('text', ErrorCode.rateLimited, this.limit.refusal()));
      return;
    }
    if (to !== undefined) {
      const frame = serverTextFrame(sender, request.text, to); // built once, the same bytes for both
      to.sendControl(frame);
      sender.sendControl(frame);
      return;
    }
    const frame = serverTextFrame(sender, request.text);
    for (const member of room) member.sendControl(frame);
  }
}
