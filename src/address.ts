// Addresses, pure: hosts and ports as typed, in the form to dial and in the
// form to show (`10.0.0.4:5000`, `[::1]:5000`), and who may connect (--allow).
// No sockets here: transport.ts dials and listens, the door admits.
import { BlockList, isIP, isIPv4 } from 'node:net';
import { LanchatError, usageError } from './errors.js';

/** Where a peer is (or was dialled). */
export interface Endpoint {
  host: string;
  port: number;
}

/** What a bad host is told (after its own `invalid host "…": ` where there is room). */
export const HOST_RULE = 'give an IPv4 or IPv6 address or a host name';
/** What a bad port is told. */
export const PORT_RULE = 'a port is a whole number from 1 to 65535';

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** `[::1]` as in URLs → `::1`; anything else as it is. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as the plain IPv4 address. */
export function plainHost(host: string): string {
  return host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host;
}

/** An IPv4 or IPv6 address (brackets allowed) or a host name, in the form to dial. */
export function normalizeHost(host: string): string | null {
  const bare = unbracket(host);
  if (isIP(bare) === 4) return bare;
  if (isIP(bare) === 6) {
    if (bare.includes('%')) return bare; // a zone (fe80::1%eth0) is no URL host: kept as typed
    const canonical = new URL(`http://[${bare}]/`).hostname.slice(1, -1); // 0:0:0:0:0:0:0:1 → ::1
    return canonical.startsWith('::ffff:') && bare.includes('.') ? bare.slice(bare.lastIndexOf(':') + 1) : canonical;
  }
  const name = bare.endsWith('.') ? bare.slice(0, -1) : bare;
  const labels = name.split('.');
  if (name.length === 0 || name.length > 253 || !labels.every((label) => HOST_LABEL.test(label))) return null;
  // "999.1.1.1", "1.2.3" or "12345" are broken addresses, not names: a top-level label is never all digits.
  if (/^\d+$/.test(labels.at(-1)!)) return null;
  return name;
}

/** A port to dial (1–65535), or with `listen` also 0: any free port. */
export function isValidPort(port: number, { listen = false } = {}): boolean {
  return Number.isInteger(port) && port >= (listen ? 0 : 1) && port <= 65535;
}

/** A port as typed (digits only), or null. */
export function parsePort(text: string, { listen = false } = {}): number | null {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  return isValidPort(port, { listen }) ? port : null;
}

/** `host:port`, with IPv6 in brackets and IPv4-mapped IPv6 as plain IPv4. */
export function formatAddress(host: string, port: number): string {
  const plain = plainHost(host);
  // Only IPv6 has colons (net.isIPv6 would compile its large regular expression: ~7 ms at every connect).
  return plain.includes(':') ? `[${plain}]:${port}` : `${plain}:${port}`;
}

/** `HOST:PORT` or `[IPv6]:PORT` (brackets required, as formatAddress writes it), normalised; or null. */
export function parseAddress(text: string): Endpoint | null {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = match && normalizeHost(match[1] ?? match[2]);
  const port = match ? parsePort(match[3]) : null;
  return host && port !== null ? { host, port } : null;
}

/** HOST:PORT as one argument (the port maybe missing or bad): `[v6]:PORT`, or a host with no colon. */
const JOINED = /^(?:\[[^\]]*\]|[^:]*):(\d*)$/;

/** Whether `given` is written as HOST:PORT (right or not), not as a host alone. */
export function isJoinedAddress(given: string): boolean {
  return JOINED.test(given);
}

/**
 * Where to dial: HOST PORT, or HOST:PORT and [v6]:PORT as one argument (the
 * netcat habit). A host that is no address or name is a usage error here, as
 * in `contacts add`, not a failed look-up.
 */
export function dialTarget(given: string, port: number | undefined): Endpoint {
  if (given.trim() === '') throw usageError('a host is required (an IP address or a host name)');
  const joined = JOINED.exec(given);
  if (port === undefined) {
    const endpoint = parseAddress(given);
    if (endpoint) return endpoint;
    if (joined && normalizeHost(given.slice(0, given.lastIndexOf(':'))) !== null)
      throw usageError(`invalid port '${joined[1]}' in "${given}": ${PORT_RULE}`);
    if (joined || normalizeHost(given) === null)
      throw usageError(`invalid address "${given}": write HOST PORT or HOST:PORT ([v6]:PORT for IPv6)`);
    throw usageError(`no port given for ${given}: write HOST PORT or HOST:PORT ([v6]:PORT for IPv6)`);
  }
  if (normalizeHost(given) === null) {
    const apart = joined ? ' (HOST PORT, or HOST:PORT alone)' : '';
    throw usageError(`invalid host "${given}": ${HOST_RULE}${apart}`);
  }
  return { host: unbracket(given), port }; // [::1] as in URLs
}

/** Who may connect: `--allow 10.0.0.0/8,fd00::/8,192.168.1.7`. */
export class AllowList {
  readonly #list = new BlockList();
  readonly rules: string[];

  /** Throws a LanchatError (usage) naming the first rule that is not an address or CIDR. */
  constructor(rules: string[]) {
    this.rules = rules;
    for (const rule of rules) {
      const [address = '', prefix, extra] = rule.split('/');
      const family = isIP(address);
      const bits = prefix === undefined ? (family === 4 ? 32 : 128) : /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
      if (family === 0 || extra !== undefined || bits < 0 || bits > (family === 4 ? 32 : 128)) {
        throw new LanchatError('ERR_USAGE', `invalid --allow rule "${rule}": give an address or CIDR (10.0.0.0/8, fd00::/8)`, 2);
      }
      this.#list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  allows(host: string): boolean {
    const address = plainHost(host);
    return this.#list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
  }
}
