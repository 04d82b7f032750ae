// Finding listeners on the local network: DNS-SD over multicast DNS (RFC 6762,
// RFC 6763), the standard Bonjour, Avahi and Python's zeroconf speak, so their
// tools see lanchat and lanchat sees what they publish. multicast-dns does the
// packets and sockets; the service records, who answers what, and reading
// answers are here. One pair of sockets (IPv4, IPv6) per network interface, so
// that each link hears our announcements with the addresses it can reach. An
// announcement is a hint, not proof: the connector checks that the listener's
// TLS key is the one announced (see connect).
//
// Why multicast-dns (7.2.5, pure JS, no native build, Node 20 fine): it does
// both sides, and lets each socket be bound per interface and family.
// @homebridge/ciao announces very well (per interface, IPv6, probing) but
// cannot browse; bonjour-service browses and announces over one IPv4 socket,
// sends out the default route's interface only, puts every interface's
// addresses in every answer, and prints to the console on a name conflict.
import { createSocket, type RemoteInfo } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import makeMdns from 'multicast-dns';
import type { Answer, Question, TxtData } from 'dns-packet';
import { LanchatError } from './errors.js';
import { normalizeFingerprint } from './fingerprint.js';
import { PROTOCOL_VERSION, isValidNick } from './protocol.js';

/** The DNS-SD service type of lanchat listeners. */
export const SERVICE_TYPE = '_lanchat._tcp.local';
const SERVICES_META = '_services._dns-sd._udp.local';
const MDNS_PORT = 5353;
const MDNS_IPV6 = 'ff02::fb';
/** RFC 6762 §10: host records (SRV, A, AAAA) live 2 minutes, the others 75. */
const HOST_TTL = 120;
const OTHER_TTL = 4500;
/** Legacy unicast answers (a query from another port than 5353) carry at most this TTL (§6.7). */
const LEGACY_TTL = 10;
/** Unsolicited announcements after a start or a change: at once, then 1 s and 3 s later (§8.3). */
const ANNOUNCE_DELAYS_MS = [0, 1000, 3000];
/** How often an announcer looks for interfaces that came, went or changed address. */
const RESCAN_MS = 5000;
/** A browse asks again at these times (§5.2: the interval at least doubles), within its wait. */
const QUERY_DELAYS_MS = [0, 1000, 3000, 7000];

/** The protocol version this lanchat announces. */
export const ANNOUNCED_VERSION = PROTOCOL_VERSION;

/** What a listener says about itself in its TXT record. */
export interface Announcement {
  nick: string;
  /** Its TLS key (canonical `AB:CD:…`). */
  fingerprint: string;
  /** The lanchat protocol version it speaks. */
  version: number;
  /** The room it hosts, if any, and how many are in it. */
  room?: { name: string; size?: number };
}

/** A listener found nearby: what it announced, and where to dial it. */
export interface Nearby extends Announcement {
  /** The DNS-SD instance name (unique on the link). */
  instance: string;
  host: string;
  port: number;
}

/** TXT strings for an announcement (RFC 6763 §6: key=value, each at most 255 bytes). */
export function encodeTxt(announcement: Announcement): string[] {
  const txt = [`v=${announcement.version}`, `nick=${announcement.nick}`, `fp=${announcement.fingerprint.replace(/:/g, '')}`];
  if (announcement.room) {
    txt.push(`room=${announcement.room.name}`);
    if (announcement.room.size !== undefined) txt.push(`size=${announcement.room.size}`);
  }
  return txt;
}

/** TXT data as key → value; the first of a repeated key wins, keys compare without case (RFC 6763 §6.4). */
function txtPairs(data: TxtData): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const entry of Array.isArray(data) ? data : [data]) {
    const text = Buffer.isBuffer(entry) ? entry.toString('utf8') : entry;
    const equals = text.indexOf('=');
    if (equals <= 0) continue; // a key with no value, or no key
    const key = text.slice(0, equals).toLowerCase();
    if (!pairs.has(key)) pairs.set(key, text.slice(equals + 1));
  }
  return pairs;
}

/** An announcement from TXT data, or null when a field lanchat needs is missing or invalid (someone else's, or garbage). */
export function decodeTxt(data: TxtData): Announcement | null {
  const pairs = txtPairs(data);
  const nick = pairs.get('nick');
  const fingerprint = normalizeFingerprint(pairs.get('fp') ?? '');
  const version = /^\d{1,6}$/.test(pairs.get('v') ?? '') ? Number(pairs.get('v')) : NaN;
  if (nick === undefined || !isValidNick(nick) || !fingerprint || !(version >= 1)) return null;
  const announcement: Announcement = { nick, fingerprint, version };
  const room = pairs.get('room');
  if (room !== undefined && isValidNick(room)) {
    const size = pairs.get('size');
    announcement.room = { name: room, ...(size !== undefined && /^\d{1,6}$/.test(size) && { size: Number(size) }) };
  }
  return announcement;
}

const fold = (name: string): string => name.normalize('NFC').toLowerCase();

/** The listeners that answer to `name`: by nick, or by the room they host (compared as contacts' names are). */
export function matchNearby(found: readonly Nearby[], name: string): Nearby[] {
  const wanted = fold(name);
  return found.filter((nearby) => fold(nearby.nick) === wanted || (nearby.room && fold(nearby.room.name) === wanted));
}

/** Part of a DNS label (at most 63 bytes in all): `text` cut to `bytes` of UTF-8; dots would split the label, so they become '-'. */
function label(text: string, bytes: number): string {
  let out = '';
  for (const char of text.replace(/\./g, '-')) {
    if (Buffer.byteLength(out + char) > bytes) break;
    out += char;
  }
  return out;
}

/** The instance name: the nick, made unique on the link by the port and the key (one install may listen twice). */
export function instanceName(announcement: Announcement, port: number): string {
  const tag = ` (lanchat ${port} ${announcement.fingerprint.replace(/:/g, '').slice(0, 8)})`;
  return `${label(announcement.nick, 63 - Buffer.byteLength(tag))}${tag}`;
}

/** One network interface's addresses, and the mDNS sockets opened on it. */
interface Link {
  name: string;
  addresses: NetworkInterfaceInfo[];
  sockets: makeMdns.MulticastDNS[];
}

/** The interfaces with an address that are not loopback; `only`: just the one that has this address. */
function findLinks(only?: string): Link[] {
  const links: Link[] = [];
  for (const [name, infos] of Object.entries(networkInterfaces())) {
    const addresses = (infos ?? []).filter((info) => !info.internal && (only === undefined || info.address === only));
    if (addresses.length > 0) links.push({ name, addresses, sockets: [] });
  }
  return links;
}

/**
 * mDNS sockets on a link: one IPv4, one IPv6 (each where the link has such an
 * address). Bound to port 5353 with SO_REUSEADDR, beside Avahi or any other
 * responder that holds it (they set it too); multicast goes out this link only.
 */
function openSockets(link: Link, onError: (error: Error) => void): void {
  const v4 = link.addresses.find((info) => info.family === 'IPv4');
  if (v4) {
    const mdns = makeMdns({ type: 'udp4', interface: v4.address, bind: '0.0.0.0', port: MDNS_PORT, reuseAddr: true });
    link.sockets.push(mdns);
  }
  if (link.addresses.some((info) => info.family === 'IPv6')) {
    // Our own socket: IPv6 only, so that it does not also get IPv4 packets (mapped).
    const socket = createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true });
    const mdns = makeMdns({ type: 'udp6', ip: MDNS_IPV6, interface: `::%${link.name}`, bind: '::', port: MDNS_PORT, socket });
    link.sockets.push(mdns);
  }
  for (const mdns of link.sockets) {
    mdns.on('error', onError);
    mdns.on('warning', ignoreWarning); // a datagram that is not DNS, an interface gone: not ours to report
  }
}

function ignoreWarning(): void {}

function closeSockets(links: readonly Link[]): Promise<void> {
  return Promise.all(
    links.flatMap((link) => link.sockets.map((mdns) => new Promise<void>((resolve) => mdns.destroy(() => resolve())))),
  ).then(() => undefined);
}

function mdnsError(error: NodeJS.ErrnoException): LanchatError {
  const why =
    error.code === 'EACCES' ? 'permission denied' : error.code === 'EADDRINUSE' ? 'another program holds it alone' : error.message;
  return new LanchatError('ERR_MDNS', `cannot use multicast DNS (UDP port ${MDNS_PORT}): ${why}`);
}

function sendAsync(send: (callback: (error: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve) => send(() => resolve())); // a link that cannot send (no route yet, gone): the others still can
}

/**
 * Whether a query from `address` came over this link: in the subnet of one of
 * its IPv4 addresses. Every socket bound to port 5353 gets the multicast of
 * every interface (Linux's IP_MULTICAST_ALL), so each link answers its own.
 */
function onLink(link: Link, address: string): boolean {
  if (isIPv4(address)) {
    const value = ipv4Number(address);
    return link.addresses.some(
      (info) => info.family === 'IPv4' && (ipv4Number(info.address) & ipv4Number(info.netmask)) === (value & ipv4Number(info.netmask)),
    );
  }
  return isIPv6(address); // IPv6 queries come without the interface they arrived on: each link answers them
}

function ipv4Number(address: string): number {
  return address.split('.').reduce((n, part) => ((n << 8) | Number(part)) >>> 0, 0);
}

/** What `announce` publishes. */
export interface AnnounceOptions extends Announcement {
  port: number;
  /** Announce only this address (a listener bound to one): the interface that has it, and it alone. */
  address?: string;
}

/** A published listener: `update` re-announces a change (a new nick, a room's size), `stop` says goodbye. */
export interface Announcer {
  /** The interfaces announced on. */
  readonly interfaces: string[];
  update(change: Partial<Announcement>): void;
  stop(): Promise<void>;
}

/**
 * Publishes a listener as `_lanchat._tcp` on every interface that has an
 * address (or the one of `options.address`), answers queries for it, and
 * announces it unsolicited at start and after each change. `stop` sends the
 * goodbye (every record with TTL 0) and closes the sockets. Throws
 * ERR_NO_INTERFACE when there is no interface to announce on.
 */
export async function announce(options: AnnounceOptions): Promise<Announcer> {
  let links = findLinks(options.address);
  if (links.length === 0) {
    throw new LanchatError(
      'ERR_NO_INTERFACE',
      options.address === undefined
        ? 'nothing to announce on: no network interface has an address'
        : `nothing to announce on: ${options.address} is not the address of a network interface (loopback is not announced)`,
    );
  }
  let current: Announcement = { nick: options.nick, fingerprint: options.fingerprint, version: options.version, room: options.room };
  const instance = `${instanceName(current, options.port)}.${SERVICE_TYPE}`; // kept through nick changes: the same listener
  const target = `lanchat-${options.fingerprint.replace(/:/g, '').slice(0, 12).toLowerCase()}-${options.port}.local`;
  const trouble: { failure?: LanchatError } = {}; // set by a socket's 'error'
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  /** Our records as seen on `link` (its addresses only), with `ttl` for the ones that are not the host's. */
  const records = (link: Link, ttl: { host: number; other: number }): { ptr: Answer; rest: Answer[] } => {
    const ptr: Answer = { name: SERVICE_TYPE, type: 'PTR', ttl: ttl.other, data: instance };
    const rest: Answer[] = [
      { name: instance, type: 'SRV', ttl: ttl.host, flush: true, data: { port: options.port, target, priority: 0, weight: 0 } },
      { name: instance, type: 'TXT', ttl: ttl.other, flush: true, data: encodeTxt(current) },
      ...link.addresses.map((info): Answer => ({
        name: target,
        type: info.family === 'IPv4' ? 'A' : 'AAAA',
        ttl: ttl.host,
        flush: true,
        data: info.address,
      })),
    ];
    return { ptr, rest };
  };
  const LIVE = { host: HOST_TTL, other: OTHER_TTL };

  const broadcast = (ttl: { host: number; other: number }): Promise<void> =>
    Promise.all(
      links.flatMap((link) =>
        link.sockets.map((mdns) => {
          const { ptr, rest } = records(link, ttl);
          return sendAsync((done) => mdns.respond({ answers: [ptr, ...rest] }, done));
        }),
      ),
    ).then(() => undefined);

  const scheduleAnnouncements = (): void => {
    for (const delay of ANNOUNCE_DELAYS_MS) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        void broadcast(LIVE);
      }, delay);
      timers.add(timer);
    }
  };

  /** Answers what a query asks of us, on the link it came from; a legacy query (not from port 5353) by unicast. */
  const answer = (link: Link, mdns: makeMdns.MulticastDNS, query: makeMdns.QueryPacket, from: RemoteInfo): void => {
    if (stopped || !onLink(link, from.address)) return;
    const legacy = from.port !== MDNS_PORT;
    const ttl = legacy ? { host: LEGACY_TTL, other: LEGACY_TTL } : LIVE;
    const { ptr, rest } = records(link, ttl);
    // Known-answer suppression (§7.1): a querier that holds our PTR with over half its TTL left needs no answer.
    const knowsPtr = (query.answers ?? []).some(
      (a) => a.type === 'PTR' && same(a.name, SERVICE_TYPE) && same(a.data, instance) && (a.ttl ?? 0) > OTHER_TTL / 2,
    );
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    for (const question of query.questions) {
      const asks = (type: string): boolean => question.type === type || (question.type as string) === 'ANY';
      if (same(question.name, SERVICE_TYPE) && asks('PTR') && !knowsPtr) answers.push(ptr);
      else if (same(question.name, SERVICES_META) && asks('PTR'))
        answers.push({ name: SERVICES_META, type: 'PTR', ttl: ttl.other, data: SERVICE_TYPE });
      else if (same(question.name, instance)) answers.push(...rest.filter((r) => r.name === instance && asks(r.type)));
      else if (same(question.name, target)) answers.push(...rest.filter((r) => r.name === target && asks(r.type)));
    }
    if (answers.length === 0) return;
    for (const record of rest) if (!answers.includes(record)) additionals.push(record); // what a browser needs next
    const response = { answers: answers.map(noFlush(legacy)), additionals: additionals.map(noFlush(legacy)) };
    if (legacy) return mdns.respond({ ...response, id: query.id, questions: query.questions }, { port: from.port, address: from.address });
    // §6: an answer that others may give too (the PTR of every listener) waits 20-120 ms at random, so that
    // many listeners do not all answer in the same instant; one only we hold goes at once.
    if (!answers.includes(ptr)) return mdns.respond(response);
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        if (!stopped) mdns.respond(response);
      },
      20 + Math.random() * 100,
    );
    timers.add(timer);
  };

  const onError = (error: NodeJS.ErrnoException): void => {
    trouble.failure ??= mdnsError(error);
  };
  const open = (link: Link): void => {
    openSockets(link, onError);
    for (const mdns of link.sockets) mdns.on('query', (query, from) => answer(link, mdns, query, from));
  };

  /**
   * Interfaces come and go (Wi-Fi, a cable, DHCP): new ones are announced on,
   * sockets of gone ones closed, new addresses of a link go into its answers.
   */
  let scanning = false;
  const rescan = async (): Promise<void> => {
    if (scanning || stopped) return;
    scanning = true;
    const next: Link[] = [];
    const fresh: Link[] = [];
    let changed = false;
    for (const found of findLinks(options.address)) {
      const old = links.find((link) => link.name === found.name);
      if (old && families(old) === families(found)) {
        changed ||= addressList(old) !== addressList(found);
        old.addresses = found.addresses;
        next.push(old);
      } else {
        fresh.push(found); // new, or a family added or gone: sockets to match
        next.push(found);
      }
    }
    const gone = links.filter((link) => !next.includes(link));
    links = next;
    for (const link of fresh) open(link);
    await Promise.all([closeSockets(gone), ready(fresh)]);
    scanning = false;
    if (!stopped && (fresh.length > 0 || changed)) scheduleAnnouncements();
  };

  for (const link of links) open(link);
  await ready(links);
  if (trouble.failure) {
    await closeSockets(links);
    throw trouble.failure;
  }
  scheduleAnnouncements();
  const scanner = setInterval(() => void rescan(), RESCAN_MS);
  scanner.unref();

  return {
    get interfaces() {
      return links.map((link) => link.name);
    },
    update(change) {
      if (stopped) return;
      current = { ...current, ...change };
      scheduleAnnouncements();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(scanner);
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await broadcast({ host: 0, other: 0 }); // goodbye: browsers drop us now, not in 75 minutes
      await closeSockets(links);
    },
  };
}

const families = (link: Link): string => [...new Set(link.addresses.map((info) => info.family))].sort().join();
const addressList = (link: Link): string => link.addresses.map((info) => info.address).join();

/** Legacy unicast answers carry no cache-flush bit (RFC 6762 §6.7). */
function noFlush(legacy: boolean): (record: Answer) => Answer {
  return (record) => (legacy ? { ...record, flush: false } : record);
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** Resolves once every socket is bound (or failed: see the 'error' listeners). */
function ready(links: readonly Link[]): Promise<void> {
  return Promise.all(
    links.flatMap((link) =>
      link.sockets.map(
        (mdns) =>
          new Promise<void>((resolve) => {
            mdns.once('ready', resolve);
            mdns.once('error', () => resolve());
          }),
      ),
    ),
  ).then(() => undefined);
}

/** What `browse` is told and asked. */
export interface BrowseOptions {
  /** How long to listen for answers. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Each listener, once, as soon as its address, port and TXT are known. */
  onFound?: (nearby: Nearby) => void;
  /** Stop early once this says enough was found (asked after each find). */
  enough?: (found: readonly Nearby[]) => boolean;
}

/** What is known of one instance while its records come in. */
interface InstanceRecords {
  srv?: { port: number; target: string };
  txt?: Announcement;
  /** The address the answer came from: on a link we share, so reachable. */
  from?: string;
  gone?: boolean;
  /** The instance name as announced (the map's key is folded to lower case). */
  name?: string;
}

/**
 * Asks every interface for `_lanchat._tcp` listeners and collects the
 * answers for `timeoutMs` (or until `enough`, or the signal). Listeners that
 * say goodbye meanwhile are dropped. Resolves to those found, in the order
 * they answered. Throws ERR_NO_INTERFACE when there is no interface to ask on.
 */
export async function browse(options: BrowseOptions): Promise<Nearby[]> {
  const links = findLinks();
  if (links.length === 0) throw new LanchatError('ERR_NO_INTERFACE', 'nowhere to look: no network interface has an address');
  const instances = new Map<string, InstanceRecords>();
  const addresses = new Map<string, string[]>(); // target host → its A/AAAA
  const found = new Map<string, Nearby>();
  const trouble: { failure?: LanchatError } = {}; // set by a socket's 'error'
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));

  /** Where to dial: the address the answer came from if it is a dialable one it announced, else the first announced IPv4, else IPv6. */
  const hostOf = (state: InstanceRecords): string | undefined => {
    const announced = addresses.get(state.srv!.target.toLowerCase()) ?? [];
    if (state.from && (isIPv4(state.from) || !state.from.toLowerCase().startsWith('fe80')) && announced.includes(state.from))
      return state.from;
    return (
      announced.find(isIPv4) ??
      announced.find((a) => !a.toLowerCase().startsWith('fe80')) ??
      (state.from && isIPv4(state.from) ? state.from : undefined)
    );
  };

  const settle = (name: string): void => {
    const state = instances.get(name)!;
    if (state.gone || found.has(name) || !state.srv || !state.txt) return;
    const host = hostOf(state);
    if (!host) return;
    const full = state.name ?? name;
    const nearby: Nearby = { ...state.txt, instance: full.slice(0, -SERVICE_TYPE.length - 1), host, port: state.srv.port };
    found.set(name, nearby);
    options.onFound?.(nearby);
    if (options.enough?.([...found.values()])) finish();
  };

  const onResponse = (mdns: makeMdns.MulticastDNS, response: makeMdns.ResponsePacket, from: RemoteInfo): void => {
    const records = [...(response.answers ?? []), ...(response.additionals ?? [])];
    const touched = new Set<string>();
    const state = (name: string): InstanceRecords => {
      const key = name.toLowerCase();
      touched.add(key);
      let entry = instances.get(key);
      if (!entry) instances.set(key, (entry = { name }));
      return entry;
    };
    for (const record of records) {
      if (record.type === 'A' || record.type === 'AAAA') {
        const list = addresses.get(record.name.toLowerCase()) ?? [];
        if (record.ttl !== 0 && !list.includes(record.data)) list.push(record.data);
        addresses.set(record.name.toLowerCase(), list);
      }
    }
    for (const record of records) {
      const name = record.name.toLowerCase();
      if (record.type === 'PTR' && same(record.name, SERVICE_TYPE)) {
        const entry = state(record.data);
        if (record.ttl === 0) {
          entry.gone = true; // goodbye
          found.delete(record.data.toLowerCase());
        } else entry.gone = false;
        entry.from ??= from.address;
      } else if (!name.endsWith(`.${SERVICE_TYPE}`)) continue;
      else if (record.type === 'SRV') {
        const entry = state(record.name);
        entry.srv = { port: record.data.port, target: record.data.target };
        entry.from ??= from.address;
      } else if (record.type === 'TXT') {
        const announcement = decodeTxt(record.data);
        if (announcement) state(record.name).txt = announcement;
      }
    }
    for (const name of touched) {
      const entry = instances.get(name)!;
      settle(name);
      // A PTR alone (a responder that adds nothing): ask for the rest.
      if (!entry.gone && !found.has(name) && (!entry.srv || !entry.txt)) {
        const questions: Question[] = [
          { name, type: 'SRV' },
          { name, type: 'TXT' },
        ];
        if (entry.srv) questions.push({ name: entry.srv.target, type: 'A' }, { name: entry.srv.target, type: 'AAAA' });
        mdns.query({ questions }, () => {});
      }
    }
  };

  const onError = (error: NodeJS.ErrnoException): void => {
    trouble.failure ??= mdnsError(error);
    finish();
  };
  for (const link of links) {
    openSockets(link, onError);
    for (const mdns of link.sockets) mdns.on('response', (response, from) => onResponse(mdns, response, from));
  }
  const timers: NodeJS.Timeout[] = [];
  const onAbort = (): void => finish();
  options.signal?.addEventListener('abort', onAbort);
  try {
    await ready(links);
    if (trouble.failure) throw trouble.failure;
    if (options.signal?.aborted) return [];
    const ask = (): void => {
      for (const link of links) for (const mdns of link.sockets) mdns.query({ questions: [{ name: SERVICE_TYPE, type: 'PTR' }] }, () => {});
    };
    for (const delay of QUERY_DELAYS_MS.filter((ms) => ms < options.timeoutMs)) timers.push(setTimeout(ask, delay));
    timers.push(setTimeout(finish, options.timeoutMs));
    await finished;
    const late = trouble.failure as LanchatError | undefined; // set meanwhile, by a socket's 'error'
    if (late) throw late;
    return [...found.values()];
  } finally {
    for (const timer of timers) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    await closeSockets(links);
  }
}
