// Writes an address and port the way people and URLs do, in logs and messages.

/**
 * "host:port" as people and URLs write it: an IPv6 address in brackets ([::1]:8888), and an
 * IPv4 peer of a dual-stack server (which Node reports as ::ffff:192.0.2.7) as plain IPv4.
 */
export function hostPort(host: string | undefined, port: number | undefined): string {
  const plain = host?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '') ?? '?';
  return `${plain.includes(':') ? `[${plain}]` : plain}:${port ?? '?'}`;
}
