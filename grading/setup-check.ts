// --check-setup: the one thing every later check needs, checked alone so a student can get it
// right first. The runner starts the server (and fails on a missing ready line); this connects.
import type { Check } from '../conformance/harness/checks.ts';
import { WireClient } from '../conformance/harness/wire-client.ts';

export const setupCheck: Check = {
  name: 'setup: the server prints "listening on HOST:PORT" and accepts a connection',
  subject: 'server',
  async run({ server }) {
    const client = await WireClient.connect(server.host, server.port);
    client.destroy();
  },
};
