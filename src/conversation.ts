// What a Chat talks to: a conversation. `Direct` is the 1:1 one, over one
// Session: it names the peer, says how safe the link is, checks the nick the
// peer claims, and turns the way the session ended into what the person is
// told. Room members and room hosts will be conversations beside it.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { formatAddress, type Endpoint } from './address.js';
import type { PeerKey, SessionSecurity } from './door.js';
import { openSession, type Incoming, type Session, type SessionEnd, type SessionOptions } from './session.js';
import type { TextKind } from './protocol.js';
import type { Room } from './room.js';
import { inert, timestamp, type StatusEvent } from './terminal.js';

/** How a conversation ended, as the person is told it. */
export interface ConversationEnd {
  /** Lines for stderr, in order (peer text already made inert). */
  notices: string[];
  /** Something was not delivered, either way, or the link failed. */
  failed: boolean;
  /** The peer's goodbye said its input was cut short (a piped receiver fails on it). */
  peerCut: boolean;
  /** The peer left (or the link failed) while our side still had input: what to call that. */
  why: string;
}

/**
 * What a Chat talks to: one peer (`Direct`, also a room's member, whose peer
 * is the host) or a room it hosts. The events are Direct's, below.
 */
export interface ConversationEvents {
  /** The session is open: the peer is known. */
  open: [];
  /** Join, nick and leave events, for the screen, the transcript and json output. */
  status: [event: StatusEvent];
  /** A loud warning about who the peer may be (multi-line). */
  warning: [text: string];
  drain: [];
  'peer-done': [];
  closing: [];
}

export interface Conversation extends EventEmitter<ConversationEvents> {
  readonly done: Promise<SessionEnd>;
  readonly isOpen: boolean;
  /** A plain-text peer: no confirmations. */
  readonly plain: boolean;
  /** Who we talk to (a room's name at its host), or null before the handshake. */
  readonly peerNick: string | null;
  readonly sendLimit: number;
  readonly linesSent: number;
  readonly unconfirmedLines: number;
  send(kind: TextKind, text: Buffer | Buffer[], lines: number, written?: () => void): boolean;
  finish(complete?: boolean): void;
  quit(options?: { complete?: boolean; graceMs?: number }): void;
  setNick(nick: string): void;
  /** Said when the conversation opens. */
  security(): string;
  /** /who. */
  describe(): string;
  conclude(end: SessionEnd): ConversationEnd;
}

/** Errors that mean the peer broke the rules, so we hung up on it. */
const PEER_FAULTS = new Set(['ERR_BAD_FRAME', 'ERR_LINE_TOO_LONG', 'ERR_NOT_UTF8']);

/** A 1:1 conversation over one connection. */
export class Direct extends EventEmitter<ConversationEvents> implements Conversation {
  readonly peer: Endpoint;
  /** The peer's address as shown (`[::1]:5000`). */
  readonly address: string;
  /** Resolves once the connection is over; then `conclude` says what it came to. */
  readonly done: Promise<SessionEnd>;
  #session: Session;
  #key: PeerKey | null;

  /** `options.nick` is ours; `deliver` hands the peer's text to the output (see SessionOptions). */
  constructor(socket: Duplex, peer: Endpoint, security: SessionSecurity, options: Omit<SessionOptions, 'plainNick'>) {
    super();
    this.peer = peer;
    this.address = formatAddress(peer.host, peer.port);
    this.#key = security.key ?? null;
    const session = openSession(socket, { ...options, plainNick: this.address });
    this.#session = session;
    const vouch = (nick: string): void => {
      const warning = security.vouch?.(nick, session.nick);
      if (warning) this.emit('warning', warning);
    };
    session.on('open', () => {
      // A lanchat peer has proved to be one: a new key is pinned (and said) first, before the lines about the session.
      if (!session.plain) security.proven?.();
      this.emit('status', {
        type: 'join',
        nick: session.peerNick!,
        address: this.address,
        plain: session.plain,
        ...(this.#key && { key: this.#key }),
      });
      this.emit('open');
      if (!session.plain) vouch(session.peerNick!);
    });
    session.on('nick', (from: string, to: string) => {
      this.emit('status', { type: 'nick', from, nick: to });
      vouch(to);
    });
    session.on('drain', () => this.emit('drain'));
    session.on('peer-done', () => this.emit('peer-done'));
    session.on('closing', () => this.emit('closing'));
    this.done = session.done;
  }

  get isOpen(): boolean {
    return this.#session.isOpen;
  }

  get plain(): boolean {
    return this.#session.plain;
  }

  /** The peer's nick (its address for a plain peer), or null before the handshake. */
  get peerNick(): string | null {
    return this.#session.peerNick;
  }

  get sendLimit(): number {
    return this.#session.sendLimit;
  }

  get linesSent(): number {
    return this.#session.stats.linesSent;
  }

  get unconfirmedLines(): number {
    return this.#session.unconfirmedLines;
  }

  /** The key as /contact just saved it: how it is known changes. */
  set keyNote(note: string) {
    if (this.#key) this.#key = { ...this.#key, note };
  }

  get key(): PeerKey | null {
    return this.#key;
  }

  send(kind: TextKind, text: Buffer | Buffer[], lines: number, written?: () => void): boolean {
    return this.#session.send(kind, text, lines, written);
  }

  finish(complete = true): void {
    this.#session.finish(complete);
  }

  quit(options?: { complete?: boolean; graceMs?: number }): void {
    this.#session.quit(options);
  }

  setNick(nick: string): void {
    this.#session.setNick(nick);
  }

  /** Said when the conversation opens, and by /who. */
  security(): string {
    return this.#key
      ? `encrypted (TLS 1.3); peer key ${this.#key.fingerprint} (${this.#key.note})`
      : 'not encrypted: anyone on the network can read this session';
  }

  /** /who: who, where, since when, how much, how safe. */
  describe(): string {
    const session = this.#session;
    const { linesSent, linesReceived, connectedAt } = session.stats;
    const kind = session.plain ? 'plain text, no confirmations' : 'lanchat protocol';
    const unconfirmed = session.unconfirmedLines;
    const confirmations =
      unconfirmed === 0 ? 'every line you sent is confirmed' : `${plural(unconfirmed, 'line')} you sent not confirmed yet`;
    return [
      `talking to ${inert(session.peerNick ?? '?')} at ${this.address} (${kind})`,
      `connected since ${connectedAt ? timestamp(connectedAt) : '-'}`,
      `messages: ${linesSent} sent, ${linesReceived} received`,
      this.security(),
      ...(session.plain ? [] : [confirmations]),
    ].join('\n');
  }

  /**
   * What the ended session came to, for the person (the peer's leaving is a
   * 'status' event). Called once the output is flushed, so that the notices
   * follow everything the peer said.
   */
  conclude(end: SessionEnd): ConversationEnd {
    const who = this.#session.peerNick ?? this.address;
    const notices: string[] = [];
    if (end.peerLeft && !end.error) this.emit('status', { type: 'leave', nick: who });
    if (end.error) {
      const dropped = PEER_FAULTS.has(end.error.code) ? `dropped ${who}: ` : '';
      notices.push(`lanchat: ${inert(dropped + end.error.message)}`);
    }
    if (end.unconfirmed > 0) notices.push(`lanchat: ${plural(end.unconfirmed, 'line')} not confirmed by ${inert(who)}`);
    // Only a goodbye can say this: a peer that vanished is reported above.
    const peerCut = end.peerCut === true && !end.error;
    if (peerCut) notices.push(`lanchat: ${inert(who)} stopped before the end of its input: what it sent is incomplete`);
    return {
      notices,
      failed: end.error !== undefined || end.unconfirmed > 0,
      peerCut,
      why: end.error ? 'the session ended' : `${inert(who)} left`,
    };
  }
}

export type { Incoming };

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/**
 * The host's side of a room it hosts: what the host's user says goes to
 * everyone (Room.say), members coming and going are status events, and the
 * room runs until the host leaves (/quit, Ctrl-D, a signal): the end of piped
 * input is not the end of the room.
 */
export class RoomHost extends EventEmitter<ConversationEvents> implements Conversation {
  readonly done: Promise<SessionEnd>;
  readonly plain = false;
  readonly sendLimit: number;
  #room: Room;
  #open = true;
  #resolve!: (end: SessionEnd) => void;

  constructor(room: Room, maxLine: number) {
    super();
    this.#room = room;
    this.sendLimit = maxLine;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    room.on('joined', (member) =>
      this.emit('status', {
        type: 'join',
        nick: member.nick,
        address: member.address,
        plain: member.plain,
        ...(member.key && { key: member.key }),
      }),
    );
    room.on('left', (nick) => this.emit('status', { type: 'leave', nick }));
    room.on('renamed', (from, nick) => this.emit('status', { type: 'nick', from, nick }));
    room.on('notice', (text) => this.emit('warning', text));
    room.on('drain', () => this.emit('drain'));
    queueMicrotask(() => this.emit('open'));
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** The room's name (what /save names its file after). */
  get peerNick(): string {
    return this.#room.name;
  }

  get linesSent(): number {
    return this.#room.hostLinesSent;
  }

  get unconfirmedLines(): number {
    return this.#room.hostLinesSent - this.#room.hostConfirmed;
  }

  send(kind: TextKind, text: Buffer | Buffer[], lines: number, written?: () => void): boolean {
    if (!this.#open) return false;
    const more = this.#room.say(kind, Array.isArray(text) ? Buffer.concat(text) : text, lines);
    written?.(); // the room keeps its own copy of what it still needs
    return more;
  }

  /** The host's input ended: the room goes on (a relay), until the host leaves. */
  finish(): void {}

  quit(): void {
    if (!this.#open) return;
    this.#open = false;
    this.emit('closing');
    void this.#room.close().then(() => this.#resolve({ reason: 'quit', unconfirmed: this.unconfirmedLines, peerLeft: false }));
  }

  setNick(nick: string): void {
    const refused = this.#room.renameHost(nick);
    if (refused) this.emit('warning', refused);
  }

  security(): string {
    return `hosting room ${inert(this.#room.name)}: each member's link is encrypted (TLS 1.3) unless it is plain text (netcat); as the host you relay, and can read, everything said here`;
  }

  describe(): string {
    const members = this.#room.members();
    return [
      `hosting room ${inert(this.#room.name)} as ${inert(this.#room.hostNick)}: ${plural(members.length, 'member')}`,
      ...members.map(
        (member) =>
          `  ${inert(member.nick)}  ${member.address}  ${member.key ? member.key.note : 'plain text'}  since ${timestamp(member.joinedAt)}`,
      ),
    ].join('\n');
  }

  conclude(end: SessionEnd): ConversationEnd {
    const notices = end.unconfirmed > 0 ? [`lanchat: ${plural(end.unconfirmed, 'line')} not confirmed by everyone in the room`] : [];
    return { notices, failed: end.unconfirmed > 0, peerCut: false, why: 'the room closed' };
  }
}
