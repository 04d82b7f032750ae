// What a Chat talks to: a conversation. `Direct` is the 1:1 one, over one
// Session: it names the peer, says how safe the link is, checks the nick the
// peer claims, and turns the way the session ended into what the person is
// told. As a room's member (its peer is the host) it also keeps who is in
// the room and says the room's events. A room's host is a conversation
// beside it.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { formatAddress, type Endpoint } from './address.js';
import type { PeerKey, SessionSecurity } from './door.js';
import { LanchatSession, openSession, type Incoming, type Session, type SessionEnd, type SessionOptions } from './session.js';
import type { RoomFrame, TextKind } from './protocol.js';
import type { Room } from './room.js';
import type { Place } from './slash.js';
import { inert, timestamp, type StatusEvent } from './terminal.js';
import { shortFingerprint } from './fingerprint.js';
import { FileLane } from './transfer.js';

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
  /** A line for the person (stderr), peer text already made inert: a room's notice, a line not delivered to someone. */
  notice: [text: string];
  /**
   * The room gave us this nick (at joining, or granting a /nick): the chat
   * takes it. `note`: what to tell the person (null: another line says it).
   */
  you: [nick: string, note: string | null];
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
  /** Where the person is (a 1:1 chat, a room's member, its host): which commands apply. */
  readonly place: Place;
  /** The room's name (at a member and at the host); null in a 1:1 chat. */
  readonly room: string | null;
  readonly sendLimit: number;
  readonly linesSent: number;
  readonly unconfirmedLines: number;
  send(kind: TextKind, text: Buffer | Buffer[], lines: number, written?: () => void): boolean;
  /** /msg in a room: says one line to `nick` alone. Returns null once sent, else the line to tell the person (nobody of that name). */
  sendTo(nick: string, kind: TextKind, text: Buffer, lines: number): string | null;
  finish(complete?: boolean): void;
  quit(options?: { complete?: boolean; graceMs?: number }): void;
  /**
   * Changes our nick: true when it is ours at once. False when it is only
   * asked for (a room's member asks its host): 'you' follows if it is
   * granted, 'notice' if not.
   */
  setNick(nick: string): boolean;
  /** Said when the conversation opens. */
  security(): string;
  /** /who, or /who NICK in a room. */
  describe(nick?: string): string;
  /** /names in a room. */
  names(): string;
  /** The nicks Tab completes: the peer's, or everyone else's in the room. */
  nicks(): string[];
  /** /kick at a room's host. */
  kick?(nick: string, reason: string | null): void;
  conclude(end: SessionEnd): ConversationEnd;
  /** Files both ways (null: a plain peer, or files are off). */
  readonly files: FileLane | null;
  /** The peer takes files: /send can offer them (in a room: the host relays them). */
  readonly canSendFiles: boolean;
  /** In a room: the member /send NICK offers to, as the room spells it, or the line to tell the person. */
  fileRecipient(nick: string): { to: string } | { refused: string };
  /** Who offers a file (in a room: the member `from`), for finding a partial file to resume. */
  fileSender(from?: string): string;
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
  #security: SessionSecurity;
  /** A member: the nick we asked for (the host may give us another). */
  #asked: string;
  /** A member: our nick in the room, and who else is there (the host first), as the host told us. */
  #me = '';
  #members: string[] = [];
  /** A member: the first `here` is said as the line that we joined. */
  #welcomed = false;
  /** Files both ways, with a lanchat peer in a 1:1 chat (options.files). */
  readonly files: FileLane | null;

  /** `options.nick` is ours; `deliver` hands the peer's text to the output (see SessionOptions). */
  constructor(socket: Duplex, peer: Endpoint, security: SessionSecurity, options: Omit<SessionOptions, 'plainNick'>) {
    super();
    this.peer = peer;
    this.address = formatAddress(peer.host, peer.port);
    this.#key = security.key ?? null;
    this.#security = security;
    this.#asked = options.nick;
    const session = openSession(socket, { ...options, plainNick: this.address });
    this.#session = session;
    this.files = options.files && session instanceof LanchatSession ? new FileLane(session) : null;
    session.on('open', () => {
      // A lanchat peer has proved to be one: a new key is pinned (and said) first, before the lines about the session.
      if (!session.plain) security.proven?.();
      if (this.room !== null) return this.#openRoom();
      this.emit('status', {
        type: 'join',
        nick: session.peerNick!,
        address: this.address,
        plain: session.plain,
        ...(this.#key && { key: this.#key }),
      });
      this.emit('open');
      if (!session.plain) this.#vouch(session.peerNick!);
    });
    session.on('nick', (from: string, to: string) => {
      this.emit('status', { type: 'nick', from, nick: to });
      this.#vouch(to);
    });
    session.on('room', (frame: RoomFrame) => this.#onRoom(frame));
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

  get place(): Place {
    return this.room === null ? 'direct' : 'member';
  }

  /** A member: the name of the room we joined (null in a 1:1 chat). */
  get room(): string | null {
    return this.#session instanceof LanchatSession ? this.#session.room : null;
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
    this.#security = { ...this.#security, newKey: false };
    if (this.#key) this.#key = { ...this.#key, note };
  }

  get key(): PeerKey | null {
    return this.#key;
  }

  /** The peer's key is not a contact's or a known peer's (and /contact has not saved it yet). */
  get keyIsNew(): boolean {
    return this.#security.newKey === true;
  }

  send(kind: TextKind, text: Buffer | Buffer[], lines: number, written?: () => void): boolean {
    return this.#session.send(kind, text, lines, written);
  }

  /** The peer takes files (its hello said so): /send can offer them. */
  get canSendFiles(): boolean {
    return this.#session instanceof LanchatSession && this.#session.canSendFiles;
  }

  fileRecipient(nick: string): { to: string } | { refused: string } {
    const to = this.room === null ? null : this.#member(nick);
    if (to === this.#me) return { refused: 'that is you' };
    if (to === null) return { refused: `nobody called ${inert(nick)} is in the room (/names lists who is)` };
    return { to };
  }

  /** The peer's key (else its nick and address); in a room the host's, with the member's nick: the host vouches for who offers. */
  fileSender(from?: string): string {
    const peer = this.#key?.fingerprint ?? `${this.peerNick ?? ''}@${this.address}`;
    return from === undefined ? peer : `${peer} ${from}`;
  }

  finish(complete = true): void {
    this.#session.finish(complete);
  }

  quit(options?: { complete?: boolean; graceMs?: number }): void {
    this.#session.quit(options);
  }

  sendTo(nick: string, kind: TextKind, text: Buffer, lines: number): string | null {
    if (this.room === null) return '/msg works in a room';
    const to = this.#member(nick);
    if (to === this.#me) return 'that is you';
    if (to === null) return `nobody called ${inert(nick)} is in the room (/names lists who is)`;
    this.#session.send(kind, text, lines, undefined, { to });
    return null;
  }

  /** In a room the nick is asked of the host, which answers `renamed` (see #onRoom) or a notice. */
  setNick(nick: string): boolean {
    this.#session.setNick(nick);
    return this.room === null;
  }

  /** A member: the one of that name in the room (us included), matched ignoring case when no nick is exactly it. */
  #member(nick: string): string | null {
    const all = [...this.#members, this.#me];
    if (all.includes(nick)) return nick;
    const folded = nick.toLowerCase();
    return all.find((member) => member.toLowerCase() === folded) ?? null;
  }

  #openRoom(): void {
    const session = this.#session;
    this.#me = session.nick;
    if (this.#me !== this.#asked) this.emit('you', this.#me, null); // the line that we joined says it
    this.emit('open');
    this.#vouch(session.peerNick!);
  }

  #vouch(nick: string): void {
    const warning = this.#security.vouch?.(nick, this.#session.nick);
    if (warning) this.emit('warning', warning);
  }

  /** What the room's host tells us besides text: who is here, who comes, goes and changes nick, what it refused. */
  #onRoom(frame: RoomFrame): void {
    switch (frame.type) {
      case 'here': {
        for (const nick of frame.nicks) if (nick !== this.#me && !this.#members.includes(nick)) this.#members.push(nick);
        if (this.#welcomed) return void this.emit('status', { type: 'here', nicks: frame.nicks });
        this.#welcomed = true;
        const asked = this.#me === this.#asked ? {} : { asked: this.#asked };
        return void this.emit('status', {
          type: 'room',
          room: this.room!,
          host: this.#session.peerNick!,
          address: this.address,
          here: frame.nicks,
          you: this.#me,
          ...asked,
        });
      }
      case 'joined':
        if (!this.#members.includes(frame.nick)) this.#members.push(frame.nick);
        return void this.emit('status', { type: 'joined', nick: frame.nick });
      case 'left':
        this.#members = this.#members.filter((nick) => nick !== frame.nick);
        return void this.emit('status', { type: 'left', nick: frame.nick, why: frame.why });
      case 'renamed':
        if (frame.from === this.#me) {
          this.#me = frame.nick; // the session took it too
          return void this.emit('you', frame.nick, `you are now ${inert(frame.nick)}`);
        }
        this.#members = this.#members.map((nick) => (nick === frame.from ? frame.nick : nick));
        this.emit('status', { type: 'nick', from: frame.from, nick: frame.nick });
        if (frame.nick === this.#session.peerNick) this.#vouch(frame.nick);
        return;
      case 'undelivered':
        return void this.emit('notice', `not delivered to ${inert(frame.nick)}: ${inert(frame.why)}`);
      case 'notice':
        return void this.emit('notice', `notice from ${inert(this.#session.peerNick ?? 'the host')}: ${inert(frame.message)}`);
      case 'delivered':
        return; // the session counts it as confirmation
    }
  }

  /**
   * Said when the conversation opens: how safe, with the key's short form (the
   * digit groups `lanchat id` prints), so that the line fits a terminal.
   */
  security(): string {
    return this.#key
      ? `encrypted, key ${shortFingerprint(this.#key.fingerprint)} (${this.#key.note})`
      : 'not encrypted: anyone on the network can read this session';
  }

  /** /who's lines on how safe: the whole key, on a line of its own. */
  #securityInFull(): string[] {
    return this.#key ? [`encrypted (TLS 1.3); peer key (${this.#key.note}):`, `  ${this.#key.fingerprint}`] : [this.security()];
  }

  /** /who: who, where, since when, how much, how safe. In a room, /who NICK: about one of its members. */
  describe(nick?: string): string {
    if (this.room !== null) return nick === undefined ? this.#describeRoom() : this.#describeMember(nick);
    const session = this.#session;
    const { linesSent, linesReceived, connectedAt } = session.stats;
    const kind = session.plain ? 'plain text, no confirmations' : 'lanchat protocol';
    const unconfirmed = session.unconfirmedLines;
    const confirmations =
      unconfirmed === 0 ? 'every line you sent is confirmed' : `${plural(unconfirmed, 'line')} you sent not confirmed yet`;
    return [
      // A plain peer's name is its address: said once.
      session.plain ? `talking to ${this.address} (${kind})` : `talking to ${inert(session.peerNick ?? '?')} at ${this.address} (${kind})`,
      `connected since ${connectedAt ? timestamp(connectedAt) : '-'}`,
      `messages: ${linesSent} sent, ${linesReceived} received`,
      ...this.#securityInFull(),
      ...(session.plain ? [] : [confirmations]),
    ].join('\n');
  }

  /** "alice's room "lab"" as people read it. */
  #roomName(): string {
    return `${inert(this.#session.peerNick ?? '?')}'s room "${inert(this.room ?? '?')}"`;
  }

  #describeRoom(): string {
    const session = this.#session;
    const { linesSent, linesReceived, connectedAt } = session.stats;
    const unconfirmed = session.unconfirmedLines;
    return [
      `in ${this.#roomName()} at ${this.address}, as ${inert(this.#me)}`,
      this.names(),
      `joined at ${connectedAt ? timestamp(connectedAt) : '-'}`,
      `messages: ${linesSent} sent, ${linesReceived} received`,
      ...this.#securityInFull(),
      unconfirmed === 0
        ? 'every line you sent reached everyone in the room'
        : `${plural(unconfirmed, 'line')} you sent not delivered to everyone yet`,
    ].join('\n');
  }

  #describeMember(nick: string): string {
    const member = this.#member(nick);
    if (member === null) return `nobody called ${inert(nick)} is in the room (/names lists who is)`;
    if (member === this.#me) return `you are ${inert(member)}, in ${this.#roomName()}`;
    if (member === this.#session.peerNick) return `${inert(member)} hosts the room, at ${this.address}; ${this.security()}`;
    return `${inert(member)} is in ${this.#roomName()} (where from, and with which key, only the host knows)`;
  }

  nicks(): string[] {
    if (this.room !== null) return [...this.#members];
    return this.#session.plain || this.#session.peerNick === null ? [] : [this.#session.peerNick];
  }

  /** /names: who is in the room, the host first. */
  names(): string {
    if (this.room === null) return '/names works in a room';
    const host = this.#session.peerNick;
    const shown = [...this.#members.map((nick) => (nick === host ? `${inert(nick)} (host)` : inert(nick))), `${inert(this.#me)} (you)`];
    return `${plural(shown.length, 'member')} in ${this.#roomName()}: ${shown.join(', ')}`;
  }

  /**
   * What the ended session came to, for the person (the peer's leaving is a
   * 'status' event). Called once the output is flushed, so that the notices
   * follow everything the peer said.
   */
  conclude(end: SessionEnd): ConversationEnd {
    if (this.room !== null) return this.#concludeRoom(end);
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

  /** A member's end: the host closed the room, or we left it; lines not delivered to everyone. */
  #concludeRoom(end: SessionEnd): ConversationEnd {
    const host = inert(this.#session.peerNick ?? this.address);
    const notices: string[] = [];
    const closed = end.reason === 'peer-left' && !end.error;
    if (closed) notices.push(`${host} closed the room`);
    if (end.error) notices.push(`lanchat: ${inert((PEER_FAULTS.has(end.error.code) ? `dropped ${host}: ` : '') + end.error.message)}`);
    if (end.unconfirmed > 0) notices.push(`lanchat: ${plural(end.unconfirmed, 'line')} not delivered to everyone in ${this.#roomName()}`);
    const peerCut = end.peerCut === true && !end.error;
    if (peerCut) notices.push(`lanchat: ${host} stopped before the end of its input: what it sent is incomplete`);
    return {
      notices,
      failed: end.error !== undefined || end.unconfirmed > 0,
      peerCut,
      why: end.error ? 'the session ended' : `${host} closed the room`,
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
  /** The host's own files: offers to members, and theirs to the host (the room relays both). */
  readonly files: FileLane;
  readonly canSendFiles = true;
  #room: Room;
  #open = true;
  #resolve!: (end: SessionEnd) => void;

  constructor(room: Room, maxLine: number) {
    super();
    this.#room = room;
    this.sendLimit = maxLine;
    this.files = new FileLane(room.hostFiles);
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    room.on('joined', (member) =>
      this.emit('status', {
        type: 'joined',
        nick: member.nick,
        address: member.address,
        plain: member.plain,
        ...(member.key && { key: member.key }),
      }),
    );
    room.on('left', (nick, why) => this.emit('status', { type: 'left', nick, why }));
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

  get place(): Place {
    return 'host';
  }

  get room(): string {
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

  sendTo(nick: string, kind: TextKind, text: Buffer, lines: number): string | null {
    if (!this.#open) return null;
    if (this.#room.member(nick) === null) {
      return nick.toLowerCase() === this.#room.hostNick.toLowerCase()
        ? 'that is you'
        : `nobody called ${inert(nick)} is in the room (/names lists who is)`;
    }
    this.#room.sayTo(nick, kind, text, lines);
    return null;
  }

  /** The host's input ended: the room goes on (a relay), until the host leaves. */
  finish(): void {}

  quit(): void {
    if (!this.#open) return;
    this.#open = false;
    this.emit('closing');
    void this.#room.close().then(() => this.#resolve({ reason: 'quit', unconfirmed: this.unconfirmedLines, peerLeft: false }));
  }

  /** The room checks the nick is free: true once it is ours, else a notice says why not. */
  setNick(nick: string): boolean {
    const refused = this.#room.renameHost(nick);
    if (refused) this.emit('notice', `lanchat: ${inert(refused)}`);
    return refused === null;
  }

  fileRecipient(nick: string): { to: string } | { refused: string } {
    const member = this.#room.member(nick);
    if (member) return { to: member.nick };
    if (nick.toLowerCase() === this.#room.hostNick.toLowerCase()) return { refused: 'that is you' };
    return { refused: `nobody called ${inert(nick)} is in the room (/names lists who is)` };
  }

  /** The member's key as the host knows it (else its nick and address). */
  fileSender(from?: string): string {
    const member = from === undefined ? null : this.#room.member(from);
    if (!member) return from ?? '';
    return member.key?.fingerprint ?? `${member.nick}@${member.address}`;
  }

  kick(nick: string, reason: string | null): void {
    if (!this.#room.kick(nick, reason ?? '')) this.emit('notice', `nobody called ${inert(nick)} is in the room (/names lists who is)`);
  }

  nicks(): string[] {
    return this.#room.members().map((member) => member.nick);
  }

  /** /names at the host: every member with its address and how its key is known. */
  names(): string {
    return this.describe();
  }

  security(): string {
    return `hosting room ${inert(this.#room.name)}: links are TLS unless netcat; you can read all that is said`;
  }

  describe(nick?: string): string {
    if (nick !== undefined) {
      const member = this.#room.member(nick);
      if (member === null) return `nobody called ${inert(nick)} is in the room (/names lists who is)`;
      const how = member.key ? member.key.note : 'plain text, not encrypted';
      const line = `${inert(member.nick)} at ${member.address} (${inert(how)}), since ${timestamp(member.joinedAt)}`;
      return member.key ? `${line}\nkey:\n  ${member.key.fingerprint}` : line; // the whole key, on a line of its own
    }
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
