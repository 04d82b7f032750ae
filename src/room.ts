// A room at its host: the members the door let in, their unique nicks, public
// and private routing, the last lines for newcomers, a bound on what each
// member may leave unread, and who has confirmed what. The host's own user is
// a participant like the members: its text comes in through `say`, and what
// it should see leaves through `deliver`. The sender of every relayed line is
// the connection it came in on: a member never names who spoke. No terminal
// here, no process: the host's Chat (RoomHost) renders the events.
import { EventEmitter } from 'node:events';
import { formatAddress } from './address.js';
import type { Admitted, PeerKey } from './door.js';
import { LanchatError } from './errors.js';
import { ROOM_FEATURE, countLines, isValidNick, NICK_RULE, type RoomFrame, type TextKind, type TextMeta } from './protocol.js';
import { FileRelay } from './file-relay.js';
import { LanchatSession, openSession, type Incoming, type Session, type SessionOptions } from './session.js';
import { parseInput, type Input } from './slash.js';
import { inert, splitLines } from './terminal.js';
import type { FileLink } from './transfer.js';
import { nameSkeleton } from './trust.js';

/** How many public lines a newcomer is shown, marked as earlier. */
export const HISTORY_LINES = 20;
/** A sender is read no faster than the members that keep up: none may have more than this queued. */
const SOFT_PENDING_BYTES = 256 * 1024;
/** A member with this much queued (one that stopped reading) is dropped. */
const MAX_PENDING_BYTES = 1024 * 1024;
/** A member whose queue has not drained for this long no longer holds the senders back. */
const STALL_MS = 1000;
/** A member whose queue has not drained for this long is dropped. */
const DROP_STALLED_MS = 15_000;
/** Flood control (see #floodWait): what one member may relay, in bytes times recipients, per second and at once. */
const FLOOD_RATE = 8 * 1024 * 1024;
const FLOOD_BURST = 2 * 1024 * 1024;
/**
 * What one turn of the event loop may relay (bytes times recipients) before
 * the room reads its members no more until the next turn. A turn lasts as
 * long as the work it was given, and libuv accepts one connection a turn: a
 * room that read everything every turn let newcomers in a few a second while
 * it was busy (and kept its timers and the host's keyboard waiting as long).
 */
const TURN_BYTES = 4 * 1024 * 1024;
/** What a plain (netcat) member can type. */
const PLAIN_HELP = 'commands: /nick NAME, /names, /msg NICK TEXT, /me ACTION, /quit; //text sends a line that starts with "/"';
/** Room frames carry nick lists in headers of at most 4096 bytes: this many nicks fit in one. */
const NICKS_PER_FRAME = 100;

export interface RoomOptions {
  /** The room's name (a nick-like word). */
  name: string;
  /** The host's nick: a participant like the members. */
  hostNick: string;
  /** Members at most, the host not counted. */
  maxMembers: number;
  /** What every member's session shares (line limit, waits, idle time, liveness). */
  session: Pick<SessionOptions, 'maxLine' | 'waitMs' | 'idleMs' | 'aliveMs' | 'handshakeMs'>;
  /** Hands the host's user what it should see; false: hold the senders until `written`. */
  deliver: (text: Incoming, written: () => void) => boolean;
}

/** A member as the host sees it (for /names and /who). */
export interface MemberInfo {
  nick: string;
  address: string;
  /** The member's key and how it is known (TLS), or null (plain text). */
  key: PeerKey | null;
  plain: boolean;
  joinedAt: Date;
}

export interface RoomEvents {
  joined: [member: MemberInfo];
  left: [nick: string, why: string];
  renamed: [from: string, nick: string];
  /** A line for the host: a refused command, a warning about who a member may be, lines that did not reach someone. */
  notice: [text: string];
  /** More of the host's lines were delivered to everyone present (see `hostConfirmed`). */
  confirmed: [];
  /** The host may say more after `say` returned false. */
  drain: [];
}

/** One relayed frame, until everyone present when it was relayed has confirmed it. */
interface Pending {
  sender: Participant;
  /** The sender's frame id (a member), or its count of lines sent through this one (the host). */
  id: number;
  /** Recipients that have not confirmed it yet. */
  waiting: number;
}

/** The host or a member: what it has been sent and not confirmed, and what it sent not yet delivered. */
interface Participant {
  nick: string;
  /** Relayed to it and not confirmed yet, oldest first: confirmed once it has confirmed `through` lines. */
  awaiting: Array<{ through: number; pending: Pending }>;
  /** Its frames not yet delivered to everyone, oldest first. */
  sent: Pending[];
  /** Frames of its that missed someone, per missing nick: the oldest and newest ids, and why (told before the oldest is delivered). */
  missed: Map<string, { first: number; id: number; why: string }>;
}

interface Member extends Participant {
  session: Session;
  info: MemberInfo;
  /** In the room: joined and not yet gone (a member that said goodbye still confirms what it got). */
  present: boolean;
  /** Why we dropped it, when we did. */
  dropped: string | null;
  /** Flood control: what it may still relay (bytes times recipients; negative: overdrawn), as of `bucketAt`. */
  bucket: number;
  bucketAt: number;
  /** Since when it has taken nothing of its queue (null: it keeps up, if slowly). */
  stalledSince: number | null;
  /** Its text frames that its socket has taken (written out), and how many of them had at the last look. */
  taken: number;
  takenAtLook: number;
  /** Counts one more taken: the write callback of each text frame sent to it. */
  took: () => void;
}

interface HistoryLine {
  kind: TextKind;
  nick: string;
  line: Buffer;
}

export class Room extends EventEmitter<RoomEvents> {
  readonly name: string;
  readonly #options: RoomOptions;
  readonly #host: Participant;
  /** Lines handed to the host's output, and written by it. */
  #hostQueued = 0;
  #hostWritten = 0;
  /** The host's own lines: sent, and delivered to everyone present. */
  #hostSent = 0;
  #hostConfirmed = 0;
  /** Members by skeleton of their nick (and the host's), for unique nicks. */
  #nicks = new Map<string, Participant>();
  #members = new Set<Member>();
  /** Members let in whose hello has not come yet (they count against the limit). */
  #arriving = 0;
  #history: HistoryLine[] = [];
  /** Senders held back (their `written`), until the members that keep up have drained. */
  #held: Array<() => void> = [];
  #hostHeld = false;
  #stallTimer: NodeJS.Timeout | null = null;
  /** Members' sessions whose writes wait for the end of this turn (see #batch). */
  #batched = new Set<Session>();
  /** Bytes relayed in this turn (times recipients), and the sessions not read since it passed TURN_BYTES. */
  #turnBytes = 0;
  #unread: Session[] | null = null;
  #guests = 0;
  #closing: Promise<void> | null = null;
  /** Files between members, and the host's own (see file-relay.ts). */
  #files: FileRelay;
  /** The host's own files: a link for its FileLane, as a member's session is for a member. */
  readonly hostFiles: FileLink;

  constructor(options: RoomOptions) {
    super();
    this.name = options.name;
    this.#options = options;
    this.#host = { nick: options.hostNick, awaiting: [], sent: [], missed: new Map() };
    this.#nicks.set(nameSkeleton(options.hostNick), this.#host);
    this.#files = new FileRelay({
      find: (nick) => {
        const who = this.#find(nick);
        return who ? { who, nick: who.nick } : null;
      },
    });
    this.hostFiles = this.#files.openHost(this.#host, () => this.#host.nick);
  }

  /** File bytes the host holds for members now (each transfer's window bounds it). */
  get fileBytesHeld(): number {
    return this.#files.heldBytes;
  }

  get hostNick(): string {
    return this.#host.nick;
  }

  /** Members in the room now. */
  get size(): number {
    return [...this.#members].filter((member) => member.present).length;
  }

  get isFull(): boolean {
    return this.#members.size + this.#arriving >= this.#options.maxMembers;
  }

  get hostLinesSent(): number {
    return this.#hostSent;
  }

  /** The host's lines delivered to everyone present when they were said (or reported as missed). */
  get hostConfirmed(): number {
    return this.#hostConfirmed;
  }

  /** Who is here, the host first (the host has no address: it is us). */
  names(): string[] {
    return [this.#host.nick, ...this.#present().map((member) => member.nick)];
  }

  members(): MemberInfo[] {
    return this.#present().map((member) => member.info);
  }

  /** Takes in a peer the door admitted. The listener checks `isFull` first. */
  join(peer: Admitted): void {
    const { security } = peer;
    const plain = security.plain;
    const address = formatAddress(peer.from.host, peer.from.port);
    const guest = plain ? this.#freeNick(`guest${++this.#guests}`) : '';
    this.#arriving++;
    let arrived = false;
    const arrive = (): void => {
      if (!arrived) this.#arriving--;
      arrived = true;
    };
    const member: Member = {
      nick: guest,
      awaiting: [],
      sent: [],
      missed: new Map(),
      session: null as unknown as Session, // set just below: the session's callbacks need the member
      info: { nick: guest, address, key: security.key ?? null, plain, joinedAt: new Date() },
      present: false,
      dropped: null,
      stalledSince: null,
      bucket: FLOOD_BURST,
      bucketAt: performance.now(),
      taken: 0,
      takenAtLook: 0,
      took: () => member.taken++,
    };
    const session = openSession(peer.stream, {
      ...this.#options.session,
      idleCounts: 'peer', // a member that only listens to a busy room is idle all the same
      role: 'listen',
      nick: this.#host.nick,
      plain,
      plainNick: guest,
      room: {
        name: this.name,
        admit: (nick, features) => {
          if (!features.includes(ROOM_FEATURE)) return new LanchatError('ERR_OLD_PEER', 'this is a room: update lanchat to join it');
          return this.#freeNick(nick);
        },
      },
      files: !plain,
      deliver: (text, written) => this.#fromMember(member, text, written),
    });
    member.session = session;
    session.on('open', () => {
      arrive();
      this.#enter(member, session.peerNick!);
      if (!plain) security.proven?.();
      const warning = plain ? null : security.vouch?.(member.nick, this.#host.nick);
      if (warning) this.emit('notice', warning);
    });
    session.on('nick-request', (nick) => this.#rename(member, nick));
    session.on('confirmed', () => this.#progress(member, session.confirmedLines));
    session.on('drain', () => {
      this.#drained(member);
      this.#files.drained(member);
    });
    session.on('file', (frame, release) => this.#files.take(member, frame, release));
    session.on('peer-done', () => {
      this.#leave(member, 'quit');
      session.finish();
    });
    void session.done.then((end) => {
      arrive();
      const why = member.dropped ?? (end.error?.code === 'ERR_PEER_LOST' ? 'lost' : end.error ? `dropped: ${end.error.message}` : 'quit');
      this.#leave(member, why);
      this.#gone(member, why);
    });
  }

  /** The host says something to everyone. False: wait for 'drain' before saying more. */
  say(kind: TextKind, body: Buffer, lines: number): boolean {
    this.#hostSent += lines;
    this.#remember(this.#host.nick, kind, [body]);
    this.#relay(this.#host, kind, [body], lines, this.#hostSent, null);
    if (this.#keepsUp()) return true;
    this.#hostHeld = true;
    this.#holdSenders();
    return false;
  }

  /** The host says something to one member alone; false when nobody of that name is here. */
  sayTo(nick: string, kind: TextKind, body: Buffer, lines: number): boolean {
    const target = this.#find(nick);
    if (!target || target === this.#host) return false;
    this.#hostSent += lines;
    this.#privately(this.#host, target as Member, kind, [body], lines, this.#hostSent);
    return true;
  }

  /** The host takes another nick: null, or why not. */
  renameHost(nick: string): string | null {
    return this.#rename(this.#host, nick);
  }

  /** Drops a member, saying why to everyone; false when nobody of that name is here. */
  kick(nick: string, reason: string): boolean {
    const member = this.#find(nick);
    if (!member || member === this.#host) return false;
    this.#drop(member as Member, `kicked by ${this.#host.nick}${reason ? `: ${reason}` : ''}`);
    return true;
  }

  /** A member's details, by nick (case-folded, as nicks are compared). */
  member(nick: string): MemberInfo | null {
    const found = this.#find(nick);
    return found && found !== this.#host ? (found as Member).info : null;
  }

  /** Says goodbye to every member; resolves once they are all gone. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#releaseHeld();
      const ends = [...this.#members].map((member) => {
        member.session.quit();
        return member.session.done;
      });
      await Promise.all(ends);
      if (this.#stallTimer) clearTimeout(this.#stallTimer);
    })();
    return this.#closing;
  }

  // Membership.

  #present(): Member[] {
    return [...this.#members].filter((member) => member.present);
  }

  #find(nick: string): Participant | undefined {
    return this.#nicks.get(nameSkeleton(nick));
  }

  /** `nick` if nobody here has it (or a look-alike), else the same with the first free number added. */
  #freeNick(nick: string): string {
    if (!this.#nicks.has(nameSkeleton(nick))) return nick;
    const stem = [...nick].slice(0, 29).join('');
    for (let n = 2; ; n++) {
      const candidate = `${stem}${n}`;
      if (!this.#nicks.has(nameSkeleton(candidate))) return candidate;
    }
  }

  #enter(member: Member, nick: string): void {
    member.nick = member.info.nick = nick;
    member.present = true;
    this.#nicks.set(nameSkeleton(nick), member);
    const session = member.session;
    if (session instanceof LanchatSession)
      this.#files.add(member, {
        get nick() {
          return member.nick;
        },
        get takesFiles() {
          return session.canSendFiles;
        },
        sendFileFrame: (frame) => session.sendFileFrame(frame),
        sendChunk: (file, data, written) => session.sendChunk(file, data, written),
      });
    const others = this.names().filter((name) => name !== nick);
    if (member.info.plain) {
      this.#tellPlain(member, `welcome to ${this.name}: you are ${nick}; here: ${others.join(', ')} (/help lists commands)`);
    } else {
      for (let i = 0; i < others.length; i += NICKS_PER_FRAME)
        this.#tell(member, { type: 'here', nicks: others.slice(i, i + NICKS_PER_FRAME) });
    }
    this.#showHistory(member);
    this.#members.add(member);
    this.#broadcast({ type: 'joined', nick }, `${nick} joined`, member);
    this.emit('joined', member.info);
  }

  /** Leaves the room (once): the others are told. What it was still to confirm waits for its session's end. */
  #leave(member: Member, why: string): void {
    if (!member.present) return;
    member.present = false;
    this.#nicks.delete(nameSkeleton(member.nick));
    this.#files.remove(member, why);
    this.#broadcast({ type: 'left', nick: member.nick, why }, `${member.nick} left (${why})`, member);
    this.emit('left', member.nick, why);
    this.#unholdIfClear();
  }

  /** Its session ended: what it never confirmed did not reach it, and what it sent is nobody's to report. */
  #gone(member: Member, why: string): void {
    this.#members.delete(member);
    member.stalledSince = null;
    const settled = new Set<Participant>();
    for (const { pending } of member.awaiting) {
      this.#miss(pending.sender, member.nick, pending.id, `left (${why})`);
      pending.waiting--;
      settled.add(pending.sender);
    }
    member.awaiting = [];
    member.sent = [];
    for (const sender of settled) this.#settle(sender);
  }

  #rename(who: Participant, nick: string): string | null {
    const refuse = (why: string): string => {
      if (who !== this.#host) this.#tellNotice(who as Member, why);
      return why;
    };
    if (!isValidNick(nick)) return refuse(NICK_RULE);
    const holder = this.#find(nick);
    if (holder && holder !== who) return refuse(`the nick ${nick} is taken here`);
    const from = who.nick;
    if (from === nick) return null;
    this.#nicks.delete(nameSkeleton(from));
    this.#nicks.set(nameSkeleton(nick), who);
    who.nick = nick;
    if (who !== this.#host) {
      (who as Member).info.nick = nick;
      (who as Member).session.renamePeer(nick);
    }
    // A plain member is told "you are now" by itself (see #plainCommand); a lanchat member learns it from this frame.
    const plainSelf = who !== this.#host && (who as Member).info.plain ? (who as Member) : undefined;
    this.#broadcast({ type: 'renamed', from, nick }, `${from} is now ${nick}`, plainSelf);
    this.emit('renamed', from, nick);
    return null;
  }

  // Text.

  /** Text from a member: a plain member's lines may be commands; the rest is relayed. */
  #fromMember(member: Member, text: Incoming, written: () => void): boolean {
    if (!member.present) {
      written();
      return true; // it said goodbye: anything after that is not ours to relay
    }
    if (member.info.plain) return this.#fromPlain(member, text, written);
    const parts = [text.body];
    const lines = countLines(text.body, Infinity);
    const id = text.id ?? 0;
    if (text.to === undefined) {
      this.#remember(member.nick, text.kind, parts);
      return this.#take(member, null, text.kind, parts, lines, id, written);
    }
    const target = this.#find(text.to);
    if (target) return this.#take(member, target, text.kind, parts, lines, id, written);
    if (id > 0) {
      this.#miss(member, text.to, id, 'nobody of that name is here');
      this.#track({ sender: member, id, waiting: 0 });
    }
    written();
    return true;
  }

  /**
   * Relays a member's frame (to `target` alone, or to all) and, when the host
   * is a recipient, hands it to the host's output. `written` (the hop's ack,
   * and reading on) waits for that output and for the members that keep up.
   */
  #take(
    sender: Member,
    target: Participant | null,
    kind: TextKind,
    parts: Buffer[],
    lines: number,
    id: number,
    written: () => void,
  ): boolean {
    let waits = 1;
    const done = (): void => {
      if (--waits === 0) written();
    };
    let shown = true;
    if (target === null || target === this.#host) {
      this.#hostQueued += lines;
      const through = this.#hostQueued;
      waits++;
      const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      shown = this.#options.deliver({ kind, nick: sender.nick, body, ...(target && { private: true }) }, () => {
        this.#hostWritten = Math.max(this.#hostWritten, through);
        this.#progress(this.#host, this.#hostWritten);
        done();
      });
    }
    if (target === null) this.#relay(sender, kind, parts, lines, id, this.#hostQueued);
    else if (target !== this.#host) this.#privately(sender, target as Member, kind, parts, lines, id);
    else if (id > 0) {
      const pending: Pending = { sender, id, waiting: 0 };
      this.#await(this.#host, this.#hostQueued, pending);
      this.#track(pending);
    }
    const keepsUp = this.#keepsUp();
    if (!keepsUp) {
      waits++;
      this.#held.push(done);
      this.#holdSenders();
    }
    const wait = this.#floodWait(sender, parts, target === null ? this.#members.size : 1);
    if (wait > 0) {
      waits++;
      setTimeout(done, wait);
    }
    done();
    return shown && keepsUp && wait === 0;
  }

  /**
   * Flood control, as chat servers do it: what a member has relayed (bytes
   * times recipients) is drawn from a bucket that fills at FLOOD_RATE up to
   * FLOOD_BURST; a member that overdraws it is read again (TCP holds the rest
   * at its end) once the bucket is back to zero. Nothing is dropped: a flood
   * simply cannot fill the other members' connections faster than a busy chat
   * would, so their lines never queue behind seconds of it.
   */
  #floodWait(sender: Member, parts: Buffer[], recipients: number): number {
    const now = performance.now();
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    const bucket = Math.min(FLOOD_BURST, sender.bucket + ((now - sender.bucketAt) * FLOOD_RATE) / 1000);
    sender.bucket = bucket - bytes * Math.max(1, recipients);
    sender.bucketAt = now;
    return sender.bucket >= 0 ? 0 : Math.ceil((-sender.bucket * 1000) / FLOOD_RATE);
  }

  /**
   * Sends a frame to every present member but its sender, and tracks it until
   * each has confirmed it. `hostThrough`: the host's output is a recipient too,
   * and has it once it has written this many lines.
   */
  #relay(sender: Participant, kind: TextKind, parts: Buffer[], lines: number, id: number, hostThrough: number | null): void {
    const pending: Pending | null = id > 0 ? { sender, id, waiting: 0 } : null;
    if (pending && hostThrough !== null) this.#await(this.#host, hostThrough, pending);
    let plainLines: Buffer | null = null; // the same bytes for every plain member
    for (const member of this.#members) {
      if (!member.present || member === sender) continue;
      if (member.info.plain) {
        plainLines ??= plainText(kind, sender.nick, parts, '');
        this.#send(member, 'msg', [plainLines], lines);
      } else {
        this.#sendTracked(member, pending, kind, parts, lines, { from: sender.nick });
      }
    }
    if (pending) this.#track(pending);
  }

  /** A private frame from `sender` to `target` (a member). */
  #privately(sender: Participant, target: Member, kind: TextKind, parts: Buffer[], lines: number, id: number): void {
    const pending: Pending | null = id > 0 ? { sender, id, waiting: 0 } : null;
    if (target.info.plain) this.#send(target, 'msg', [plainText(kind, sender.nick, parts, ' (private)')], lines);
    else this.#sendTracked(target, pending, kind, parts, lines, { from: sender.nick, private: true });
    if (pending) this.#track(pending);
  }

  /** Sends to a lanchat member, which then owes `pending` its confirmation (or, if it cannot take it, missed it). */
  #sendTracked(member: Member, pending: Pending | null, kind: TextKind, parts: Buffer[], lines: number, meta: TextMeta): void {
    if (this.#send(member, kind, parts, lines, meta)) {
      if (pending) this.#await(member, member.session.stats.linesSent, pending);
    } else if (pending && member.session.isOpen) {
      this.#miss(pending.sender, member.nick, pending.id, `a line is longer than ${member.nick} accepts`);
    }
  }

  /** Frame `id` of `sender`'s did not reach `nick`. */
  #miss(sender: Participant, nick: string, id: number, why: string): void {
    const missed = sender.missed.get(nick);
    sender.missed.set(nick, { first: Math.min(id, missed?.first ?? id), id: Math.max(id, missed?.id ?? 0), why });
  }

  /** Sends to one member; false when it could not (it is gone, or a line is longer than it accepts). */
  #send(member: Member, kind: TextKind, parts: Buffer[], lines: number, meta?: TextMeta): boolean {
    const session = member.session;
    if (!session.isOpen) return false;
    if (session.sendLimit < this.#options.session.maxLine && parts.some((part) => countLines(part, session.sendLimit) < 0)) return false;
    this.#batch(session);
    session.send(kind, parts, lines, member.took, meta);
    this.#watch(member);
    for (const part of parts) this.#turnBytes += part.length;
    if (this.#turnBytes > TURN_BYTES) this.#endTurn();
    return true;
  }

  /** Reads no member until the next turn: what they sent waits in the kernel, and the loop comes round. */
  #endTurn(): void {
    if (this.#unread) return;
    this.#unread = [...this.#members].map((member) => member.session);
    for (const session of this.#unread) session.pauseReading();
  }

  /** Holds a member's writes until the end of this turn of the event loop: what the turn relays goes out in one write. */
  #batch(session: Session): void {
    if (this.#batched.has(session)) return;
    session.holdWrites();
    this.#batched.add(session);
    if (this.#batched.size === 1) setImmediate(this.#releaseWrites);
  }

  #releaseWrites = (): void => {
    for (const session of this.#batched) session.releaseWrites();
    this.#batched.clear();
    this.#turnBytes = 0;
    const unread = this.#unread ?? [];
    this.#unread = null;
    for (const session of unread) session.resumeReading();
  };

  #await(recipient: Participant, through: number, pending: Pending): void {
    // The host's output may have written it already (then there is nothing to wait for).
    const confirmed = recipient === this.#host ? this.#hostWritten : (recipient as Member).session.confirmedLines;
    if (confirmed >= through) return;
    pending.waiting++;
    recipient.awaiting.push({ through, pending });
  }

  #track(pending: Pending): void {
    pending.sender.sent.push(pending);
    if (pending.waiting === 0) this.#settle(pending.sender);
  }

  /** A recipient confirmed `confirmed` lines: what it was awaiting up to there is settled. */
  #progress(recipient: Participant, confirmed: number): void {
    const settled = new Set<Participant>();
    while (recipient.awaiting.length > 0 && recipient.awaiting[0].through <= confirmed) {
      const { pending } = recipient.awaiting.shift()!;
      pending.waiting--;
      settled.add(pending.sender);
    }
    for (const sender of settled) this.#settle(sender);
  }

  /** Tells a sender what was delivered: the frames that missed someone first, then the newest frame delivered in order. */
  #settle(sender: Participant): void {
    let delivered = 0;
    while (sender.sent.length > 0 && sender.sent[0].waiting === 0) delivered = sender.sent.shift()!.id;
    const oldestOpen = sender.sent[0]?.id ?? Infinity;
    for (const [nick, miss] of sender.missed) {
      // Told before `delivered` covers the first frame it missed (not earlier: the frames before it may still miss someone else).
      if (miss.first >= oldestOpen) continue;
      sender.missed.delete(nick);
      if (sender === this.#host) this.emit('notice', `not delivered to ${nick}: ${miss.why}`);
      else this.#tell(sender as Member, { type: 'undelivered', id: miss.id, nick, why: miss.why });
    }
    if (delivered === 0) return;
    if (sender !== this.#host) return this.#tell(sender as Member, { type: 'delivered', id: delivered });
    this.#hostConfirmed = delivered; // the host's ids are its count of lines sent
    this.emit('confirmed');
  }

  // Plain members: lines, some of them commands.

  #fromPlain(member: Member, text: Incoming, written: () => void): boolean {
    let said: string[] = [];
    let more = true;
    let waits = 1;
    const done = (): void => {
      if (--waits === 0) written();
    };
    const say = (kind: TextKind, lines: string[], to: Participant | null = null): void => {
      if (lines.length === 0) return;
      const body = Buffer.from(lines.map((line) => `${line}\n`).join(''));
      if (!to) this.#remember(member.nick, kind, [body]);
      waits++;
      more = this.#take(member, to, kind, [body], lines.length, 0, done) && more;
    };
    // The room speaks UTF-8: bytes that are not (a Latin-1 terminal) are said as `\xNN` escapes.
    for (const line of splitLines(text.body)) {
      const input = parseInput(line.endsWith('\r') ? line.slice(0, -1) : line);
      if (input.command === 'say') {
        said.push(input.text);
        continue;
      }
      say('msg', said);
      said = [];
      this.#plainCommand(member, input, say);
    }
    say('msg', said);
    done();
    return more;
  }

  #plainCommand(member: Member, input: Input, say: (kind: TextKind, lines: string[], to?: Participant | null) => void): void {
    switch (input.command) {
      case 'me':
        return say('me', [input.text]);
      case 'nick':
        if (input.nick === null) return this.#tellPlain(member, `you are ${member.nick}`);
        if (this.#rename(member, input.nick) === null) this.#tellPlain(member, `you are now ${input.nick}`);
        return;
      case 'names':
        return this.#tellPlain(member, `here: ${this.names().join(', ')}`);
      case 'msg': {
        const target = this.#find(input.nick);
        if (!target || target === member) return this.#tellPlain(member, `nobody else called ${input.nick} is here`);
        return say('msg', [input.text], target);
      }
      case 'quit':
        member.session.quit();
        return;
      case 'help':
        return this.#tellPlain(member, PLAIN_HELP);
      case 'invalid':
        return this.#tellPlain(member, input.hint);
      default:
        return this.#tellPlain(member, `/${input.command} does not work here (${PLAIN_HELP})`);
    }
  }

  // What members are told besides text.

  #tell(member: Member, frame: RoomFrame): void {
    if (member.info.plain) return;
    member.session.tellRoom(frame);
  }

  #tellNotice(member: Member, message: string): void {
    if (member.info.plain) this.#tellPlain(member, message);
    else this.#tell(member, { type: 'notice', message });
  }

  /** An event line to a plain member, as `* text`. */
  #tellPlain(member: Member, text: string): void {
    this.#send(member, 'msg', [Buffer.from(`* ${inert(text)}\n`)], 1);
  }

  #broadcast(frame: RoomFrame, line: string, except?: Member): void {
    for (const member of this.#members) {
      if (!member.present || member === except) continue;
      if (member.info.plain) this.#tellPlain(member, line);
      else this.#tell(member, frame);
    }
  }

  #remember(nick: string, kind: TextKind, parts: Buffer[]): void {
    const lines: HistoryLine[] = [];
    // Only the last HISTORY_LINES lines of a big body are copied.
    for (let p = parts.length - 1; p >= 0 && lines.length < HISTORY_LINES; p--) {
      const part = parts[p];
      let end = part.length - 1; // the LF of the last line
      while (end >= 0 && lines.length < HISTORY_LINES) {
        // lastIndexOf would take a negative offset as counted from the end: a line at the start begins at 0.
        const start = end === 0 ? 0 : part.lastIndexOf(0x0a, end - 1) + 1;
        lines.unshift({ kind, nick, line: Buffer.from(part.subarray(start, end + 1)) });
        end = start - 1;
      }
    }
    this.#history.push(...lines);
    if (this.#history.length > HISTORY_LINES) this.#history.splice(0, this.#history.length - HISTORY_LINES);
  }

  #showHistory(member: Member): void {
    for (const { kind, nick, line } of this.#history) {
      if (member.info.plain) this.#send(member, 'msg', [plainText(kind, nick, [line], ' (earlier)')], 1);
      else this.#send(member, kind, [line], 1, { from: nick, earlier: true });
    }
  }

  // Nobody stalls the room.

  /**
   * What a member has queued and not taken, files left out: a file's bytes
   * are bounded by its window and wait behind text (file-relay.ts), so they
   * neither hold the senders of text nor make a member that reads too slow.
   */
  #textPending(member: Member): number {
    return member.session.pendingBytes - this.#files.inSocket(member);
  }

  /** True while no member that keeps up has more than SOFT_PENDING_BYTES queued. */
  #keepsUp(): boolean {
    for (const member of this.#members) {
      if (member.present && member.stalledSince === null && this.#textPending(member) > SOFT_PENDING_BYTES) return false;
    }
    return true;
  }

  /** Watches a member's queue after a write: too much is a drop; some starts the count of how long it has not drained. */
  #watch(member: Member): void {
    const pending = this.#textPending(member);
    if (pending > MAX_PENDING_BYTES) return this.#drop(member, `dropped: too slow: ${Math.round(pending / 1024)} KiB it did not read`);
  }

  /** Ends a member's session, telling it why (a plain member too), and the others. */
  #drop(member: Member, why: string): void {
    if (member.dropped) return;
    member.dropped = why;
    this.#leave(member, why);
    if (member.info.plain) this.#tellPlain(member, why);
    member.session.drop(new LanchatError('ERR_DROPPED', why));
  }

  /** Senders wait; a member that takes nothing for STALL_MS stops holding them (and is dropped later). */
  #holdSenders(): void {
    if (this.#stallTimer) return;
    this.#stallTimer = setTimeout(() => this.#checkStalls(), STALL_MS);
  }

  #checkStalls(): void {
    this.#stallTimer = null;
    const now = Date.now();
    for (const member of this.#members) {
      // A member that took something since the last look is slow, not stalled: it still holds the senders.
      const took = member.taken !== member.takenAtLook;
      member.takenAtLook = member.taken;
      if (!member.present || this.#textPending(member) <= SOFT_PENDING_BYTES) continue;
      if (took) {
        member.stalledSince = null;
        continue;
      }
      member.stalledSince ??= now;
      if (now - member.stalledSince >= DROP_STALLED_MS)
        this.#drop(member, `dropped: too slow: it read nothing for ${DROP_STALLED_MS / 1000} s`);
    }
    this.#unholdIfClear();
    // Looked at again while senders wait, and until stalled members drain or are dropped.
    const waiting = this.#held.length > 0 || this.#hostHeld;
    if (waiting || [...this.#members].some((member) => member.present && member.stalledSince !== null)) this.#holdSenders();
  }

  #drained(member: Member): void {
    member.stalledSince = null;
    this.#unholdIfClear();
  }

  #unholdIfClear(): void {
    if (!this.#keepsUp()) return;
    this.#releaseHeld();
  }

  #releaseHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const release of held) release();
    if (this.#hostHeld) {
      this.#hostHeld = false;
      this.emit('drain');
    }
  }
}

/** Lines for a plain member: `nick: text` (`* nick text` for an action), one per line, the text made inert. */
function plainText(kind: TextKind, nick: string, parts: Buffer[], mark: string): Buffer {
  const text = Buffer.concat(parts).toString('utf8');
  const prefix = kind === 'me' ? `* ${nick}${mark} ` : `${nick}${mark}: `;
  let out = '';
  for (let start = 0; start < text.length;) {
    const end = text.indexOf('\n', start);
    out += `${prefix}${inert(text.slice(start, end))}\n`;
    start = end + 1;
  }
  return Buffer.from(out);
}
