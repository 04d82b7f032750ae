// Files between the people of a room, through its host (PROTOCOL.md, Rooms):
// each transfer is two, joined here — the sender's, under its id, and the
// receiver's, under an id of the host's own numbering toward it. Frames are
// passed on as they come and chunks as the pieces they arrived in: nothing
// is stored. What waits here is bounded by the transfer's window (the
// receiver's `got` frames let the sender on), and the host checks that a
// sender keeps to it. File frames to a member wait behind its text: a line
// relayed to it never queues behind a file.
import { EventEmitter } from 'node:events';
import type { FileFrame } from './protocol.js';
import type { FileControlFrame } from './session.js';
import { WINDOW_BYTES, type FileLink } from './transfer.js';

/**
 * How far a sender may run ahead of what its receiver has written: the
 * window, and one read of the sender's file (lanchat reads 1 MiB at a time
 * and checks the window after each read). Beyond it the host ends the transfer.
 */
export const RELAY_AHEAD_BYTES = WINDOW_BYTES + 1024 * 1024;
/** Pieces of one file waiting here at most: a sender of tiny chunks cannot make the bookkeeping outgrow the bytes. */
const MAX_PIECES = 16 * 1024;
/** Relayed files one person receives at once; an accept beyond waits until one of them ends (bounds what waits for a slow reader). */
export const ACTIVE_PER_RECEIVER = 2;

/** One side of the relay: a member's session, or the host's own files. */
export interface FilePort {
  /** The nick it has now (said as `from` in the offers it makes). */
  readonly nick: string;
  /** It takes file frames (its hello lists `file`). */
  readonly takesFiles: boolean;
  sendFileFrame(frame: FileControlFrame): void;
  /** False when it can take no more now: wait for `drained`. `written` once the data has left (or never will). */
  sendChunk(file: number, data: Buffer, written: () => void): boolean;
}

export interface FileRelayOptions {
  /** Who in the room answers to `nick` (compared as the room compares nicks), and the nick as the room spells it. */
  find: (nick: string) => { who: object; nick: string } | null;
}

/** A file on its way from one side to the other. */
interface Relayed {
  sender: End;
  senderId: number;
  receiver: End;
  receiverId: number;
  /** How far into the file the data passed on to the receiver goes. */
  forwarded: number;
  /** How much the receiver has said it wrote. */
  got: number;
  /** Pieces waiting here for the receiver (queued, or in its socket). */
  pieces: number;
  /** The accept was passed on to the sender (the receiver counts it among its ACTIVE_PER_RECEIVER). */
  active: boolean;
  /** The receiver's accept, waiting for its turn. */
  waiting: Extract<FileFrame, { type: 'accept' }> | null;
}

type Queued = { frame: FileControlFrame } | { relayed: Relayed; data: Buffer; release: () => void };

interface End {
  who: object;
  port: FilePort;
  /** The id of the next offer passed on to it. */
  nextId: number;
  /** Its own offers, by its ids; the offers passed on to it, by ours. */
  sending: Map<number, Relayed>;
  receiving: Map<number, Relayed>;
  /** File frames for it, in order, behind its text (see #flush). */
  queue: Queued[];
  blocked: boolean;
  /** File bytes handed to its socket and not taken yet. */
  inSocket: number;
  active: number;
}

export class FileRelay {
  #find: FileRelayOptions['find'];
  #ends = new Map<object, End>();
  /** The host's own files, when it takes part (see `openHost`). */
  #hostLink: EventEmitter | null = null;

  constructor(options: FileRelayOptions) {
    this.#find = options.find;
  }

  /** `who` (a member whose session is open) takes part in files through `port`. */
  add(who: object, port: FilePort): void {
    this.#ends.set(who, {
      who,
      port,
      nextId: 1,
      sending: new Map(),
      receiving: new Map(),
      queue: [],
      blocked: false,
      inSocket: 0,
      active: 0,
    });
  }

  /**
   * The host's own files: a link for its FileLane, as a member's session is
   * for a member's. Its offers name a member (`to`); offers to it say `from`.
   */
  openHost(who: object, nick: () => string): FileLink {
    const link = new HostLink(this, who);
    this.#hostLink = link;
    this.add(who, {
      get nick() {
        return nick();
      },
      takesFiles: true,
      sendFileFrame: (frame) => link.emit('file', frame, () => {}),
      sendChunk: (file, data, written) => {
        // The host's own disk: the transfer's window bounds what waits for it.
        link.emit('file', { type: 'chunk', file, parts: [data], last: true }, written);
        return true;
      },
    });
    return link;
  }

  /** `who` left the room: its transfers end, and the other side of each is told why. */
  remove(who: object, why: string): void {
    const end = this.#ends.get(who);
    if (!end) return;
    this.#ends.delete(who);
    const left = `${end.port.nick} left (${why})`;
    for (const relayed of end.sending.values()) {
      this.#toReceiver(relayed, { type: 'cancel', file: relayed.receiverId, why: left });
      this.#forget(relayed);
    }
    for (const relayed of end.receiving.values()) {
      this.#toSender(relayed, { type: 'decline', file: relayed.senderId, why: left });
      this.#forget(relayed);
    }
    for (const item of end.queue.splice(0)) if ('data' in item) this.#let(item);
  }

  /** Bytes of files handed to `who`'s socket and not taken yet (they are not its text's backlog). */
  inSocket(who: object): number {
    return this.#ends.get(who)?.inSocket ?? 0;
  }

  /** File bytes waiting here for anyone: queued, or in a socket not taken yet. */
  get heldBytes(): number {
    let held = 0;
    for (const end of this.#ends.values()) {
      held += end.inSocket;
      for (const item of end.queue) if ('data' in item) held += item.data.length;
    }
    return held;
  }

  /** `who`'s socket drained: what waits for it goes on. */
  drained(who: object): void {
    const end = this.#ends.get(who);
    if (!end) return;
    end.blocked = false;
    this.#flush(end);
    this.#hostLink?.emit('drain'); // the host's own transfers may read on
  }

  /**
   * A file frame from `who` (call `release` once its bytes are not needed).
   * For a chunk: false when its receiver has more waiting for it.
   */
  take(who: object, frame: FileFrame, release: () => void): boolean {
    const end = this.#ends.get(who);
    if (!end) {
      release();
      return true;
    }
    switch (frame.type) {
      case 'offer':
        release();
        this.#offer(end, frame);
        return true;
      case 'start':
      case 'chunk':
      case 'sent':
      case 'cancel': {
        const relayed = end.sending.get(frame.file);
        if (!relayed) {
          release();
          return true;
        }
        return this.#fromSender(relayed, frame, release);
      }
      case 'accept':
      case 'decline':
      case 'got':
      case 'received': {
        release();
        const relayed = end.receiving.get(frame.file);
        if (relayed) this.#fromReceiver(relayed, frame);
        return true;
      }
    }
  }

  #offer(end: End, offer: Extract<FileFrame, { type: 'offer' }>): void {
    if (end.sending.has(offer.file)) return; // said twice: the first counts
    const refuse = (why: string): void => end.port.sendFileFrame({ type: 'decline', file: offer.file, why });
    if (offer.to === undefined) return refuse('in a room an offer says whom it is for (/send NICK PATH)');
    const found = this.#find(offer.to);
    if (!found) return refuse('nobody of that name is here');
    if (found.who === end.who) return refuse('that is you');
    const receiver = this.#ends.get(found.who);
    if (!receiver?.port.takesFiles) return refuse(`${found.nick} takes no files (an older lanchat, or netcat)`);
    const relayed: Relayed = {
      sender: end,
      senderId: offer.file,
      receiver,
      receiverId: receiver.nextId++,
      forwarded: 0,
      got: 0,
      pieces: 0,
      active: false,
      waiting: null,
    };
    end.sending.set(relayed.senderId, relayed);
    receiver.receiving.set(relayed.receiverId, relayed);
    const { name, bytes, key } = offer;
    this.#toReceiver(relayed, { type: 'offer', file: relayed.receiverId, from: end.port.nick, name, bytes, key });
  }

  #fromSender(relayed: Relayed, frame: Extract<FileFrame, { type: 'start' | 'chunk' | 'sent' | 'cancel' }>, release: () => void): boolean {
    const file = relayed.receiverId;
    switch (frame.type) {
      case 'start':
        release();
        relayed.forwarded = relayed.got = frame.offset;
        this.#toReceiver(relayed, { type: 'start', file, offset: frame.offset });
        return true;
      case 'chunk': {
        const receiver = relayed.receiver;
        frame.parts.forEach((data, i) => {
          relayed.forwarded += data.length;
          relayed.pieces++;
          receiver.queue.push({ relayed, data, release: i === frame.parts.length - 1 ? release : () => {} });
        });
        if (frame.parts.length === 0) release();
        // The window is the receiver's memory and ours: a sender that ignores it is stopped, not buffered.
        if (relayed.forwarded - relayed.got > RELAY_AHEAD_BYTES || relayed.pieces > MAX_PIECES) {
          this.#breakOff(
            relayed,
            `the sender ran more than ${RELAY_AHEAD_BYTES / 1024 / 1024} MiB ahead of the receiver (the host stopped it)`,
          );
          return true;
        }
        this.#flush(receiver);
        return !receiver.blocked && receiver.queue.length === 0;
      }
      case 'sent':
        release();
        this.#toReceiver(relayed, { type: 'sent', file, sha256: frame.sha256 });
        return true;
      case 'cancel':
        release();
        this.#toReceiver(relayed, { type: 'cancel', file, why: frame.why });
        this.#forget(relayed);
        return true;
    }
  }

  #fromReceiver(relayed: Relayed, frame: Extract<FileFrame, { type: 'accept' | 'decline' | 'got' | 'received' }>): void {
    const file = relayed.senderId;
    switch (frame.type) {
      case 'accept':
        if (relayed.active || relayed.waiting) return;
        relayed.waiting = frame;
        return this.#nextAccept(relayed.receiver);
      case 'got':
        relayed.got = Math.max(relayed.got, frame.bytes);
        return this.#toSender(relayed, { type: 'got', file, bytes: frame.bytes });
      case 'decline':
        this.#toSender(relayed, { type: 'decline', file, why: frame.why });
        return this.#forget(relayed, true);
      case 'received':
        this.#toSender(relayed, { type: 'received', file });
        return this.#forget(relayed, true);
    }
  }

  /** Passes on the oldest accept that waits, while `receiver` has fewer than ACTIVE_PER_RECEIVER files coming. */
  #nextAccept(receiver: End): void {
    for (const relayed of receiver.receiving.values()) {
      if (receiver.active >= ACTIVE_PER_RECEIVER) return;
      const accept = relayed.waiting;
      if (!accept) continue;
      relayed.waiting = null;
      relayed.active = true;
      receiver.active++;
      this.#toSender(relayed, { ...accept, file: relayed.senderId });
    }
  }

  /** The host ends a transfer itself: both sides are told why. */
  #breakOff(relayed: Relayed, why: string): void {
    this.#toSender(relayed, { type: 'decline', file: relayed.senderId, why });
    this.#drop(relayed);
    this.#toReceiver(relayed, { type: 'cancel', file: relayed.receiverId, why });
    this.#forget(relayed);
  }

  /** The transfer is over: frames about it are ignored from now on; `ended by the receiver`: what still waits for it is dropped. */
  #forget(relayed: Relayed, byReceiver = false): void {
    const { sender, receiver } = relayed;
    if (sender.sending.get(relayed.senderId) === relayed) sender.sending.delete(relayed.senderId);
    if (receiver.receiving.get(relayed.receiverId) === relayed) receiver.receiving.delete(relayed.receiverId);
    if (byReceiver) this.#drop(relayed);
    if (!relayed.active) return;
    relayed.active = false;
    receiver.active--;
    if (this.#ends.get(receiver.who) === receiver) this.#nextAccept(receiver);
  }

  /** Lets go of the pieces of `relayed` that wait in its receiver's queue. */
  #drop(relayed: Relayed): void {
    const queue = relayed.receiver.queue;
    const kept = queue.filter((item) => !('data' in item) || item.relayed !== relayed);
    for (const item of queue) if ('data' in item && item.relayed === relayed) this.#let(item);
    relayed.receiver.queue = kept;
  }

  #let(item: Extract<Queued, { data: Buffer }>): void {
    item.relayed.pieces--;
    item.release();
  }

  #toSender(relayed: Relayed, frame: FileControlFrame): void {
    if (this.#ends.get(relayed.sender.who) === relayed.sender) relayed.sender.port.sendFileFrame(frame);
  }

  #toReceiver(relayed: Relayed, frame: FileControlFrame): void {
    const receiver = relayed.receiver;
    if (this.#ends.get(receiver.who) !== receiver) return;
    receiver.queue.push({ frame });
    this.#flush(receiver);
  }

  /** Hands what waits for `end` to it while its socket takes more. */
  #flush(end: End): void {
    while (!end.blocked && end.queue.length > 0) {
      const item = end.queue.shift()!;
      if ('frame' in item) {
        end.port.sendFileFrame(item.frame);
        continue;
      }
      const { relayed, data, release } = item;
      end.inSocket += data.length;
      const more = end.port.sendChunk(relayed.receiverId, data, () => {
        end.inSocket -= data.length;
        relayed.pieces--;
        release();
      });
      if (!more) end.blocked = true;
    }
  }
}

/** The host's own files, seen from its FileLane: what it sends goes into the relay as a member's frames would. */
class HostLink extends EventEmitter implements FileLink {
  #relay: FileRelay;
  #who: object;

  constructor(relay: FileRelay, who: object) {
    super();
    this.#relay = relay;
    this.#who = who;
  }

  sendFileFrame(frame: FileControlFrame): void {
    this.#relay.take(this.#who, frame, () => {});
  }

  sendChunk(file: number, data: Buffer, written?: () => void): boolean {
    return this.#relay.take(this.#who, { type: 'chunk', file, parts: [data], last: true }, written ?? (() => {}));
  }
}
