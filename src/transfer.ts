// Files over one lanchat session (PROTOCOL.md, Files): offers, acceptance,
// the data lane behind the text, verification end to end, and resume. No file
// is opened here: the sender hands in a Source, the receiver a Destination.
import { EventEmitter } from 'node:events';
import { createHash, type Hash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { FileFrame } from './protocol.js';
import type { FileControlFrame } from './session.js';

/** Bytes per chunk frame: a line typed during a transfer waits behind one at most (plus what the kernel holds). */
export const CHUNK_BYTES = 256 * 1024;
/**
 * How far the sender may run ahead of what the receiver has written: keeps
 * the receiver's memory bounded, and the socket short, whatever its disk does
 * (so the session never stops reading, and text keeps flowing).
 */
export const WINDOW_BYTES = 4 * 1024 * 1024;
/** The receiver tells the sender what it has written once per this much (and at the end). */
const GOT_EVERY_BYTES = 1024 * 1024;

/** A file to send. */
export interface Source {
  /** As offered: the receiver keeps a safe version of it. */
  name: string;
  size: number;
  /** Identifies this file's content for a resume (hex, 16 to 64 digits): the same file offered again has the same key. */
  key: string;
  /** Reads the file from its start: exactly `size` bytes, unless it changed. */
  open(): Readable;
  /** Takes back a chunk its reader gave, once sent: its buffer can take another read. */
  recycle?: (chunk: Buffer) => void;
}

/** Where an accepted file goes. */
export interface Destination {
  /** Bytes held already from an earlier, cut transfer (0: none). */
  offset: number;
  /** A SHA-256 fed with those bytes. */
  prefix: Hash;
  /** Writes the file from byte `start` (0 or `offset`), dropping anything after it. */
  open(start: number): Writable;
  /** The data is whole and its hash matched: give it its name; resolves to the name it got. */
  keep(): Promise<string>;
  /** The data did not match: throw it away. */
  discard(): Promise<void>;
}

/** What the lane needs of its session (a LanchatSession). */
export interface FileLink extends EventEmitter {
  sendFileFrame(frame: FileControlFrame): void;
  sendChunk(file: number, data: Buffer, written?: () => void): boolean;
}

export type TransferState = 'offered' | 'active' | 'done' | 'declined' | 'failed';

export interface TransferEnd {
  state: 'done' | 'declined' | 'failed';
  /** Why it was declined or failed (the peer's words are made inert by whoever prints them). */
  why?: string;
  /** At the receiver, once done: the name the file was kept under. */
  savedAs?: string;
}

/** What transfers share: the offer, progress, the end. */
export abstract class Transfer {
  readonly id: number;
  readonly name: string;
  readonly size: number;
  readonly done: Promise<TransferEnd>;
  /** Bytes the receiver has written (at the sender: as the receiver last said). */
  bytes = 0;
  /** Where the data started (a resume skips what the receiver had). */
  startedFrom = 0;
  startedAt: number | null = null;
  protected readonly lane: FileLane;
  #state: TransferState = 'offered';
  #resolve!: (end: TransferEnd) => void;

  constructor(lane: FileLane, id: number, name: string, size: number) {
    this.lane = lane;
    this.id = id;
    this.name = name;
    this.size = size;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  get state(): TransferState {
    return this.#state;
  }

  get ended(): boolean {
    return this.#state === 'done' || this.#state === 'declined' || this.#state === 'failed';
  }

  abstract readonly direction: 'in' | 'out';

  protected activate(offset: number): void {
    this.#state = 'active';
    this.startedFrom = this.bytes = offset;
    this.startedAt = Date.now();
  }

  protected progress(bytes: number): void {
    this.bytes = bytes;
    this.lane.emit('progress', this);
  }

  protected end(end: TransferEnd): void {
    if (this.ended) return;
    this.#state = end.state;
    this.stop();
    this.lane.forget(this);
    this.#resolve(end);
    this.lane.emit('end', this, end);
  }

  /** Lets go of the file's stream. */
  protected abstract stop(): void;
  /** A file frame about this transfer. */
  abstract take(frame: FileFrame, release: () => void): void;
  /** The session ended: what is left of the transfer fails. */
  abstract lost(why: string): void;
}

/** A file we offered. */
export class OutgoingTransfer extends Transfer {
  readonly direction = 'out';
  #source: Source;
  #reader: Readable | null = null;
  #hash: Hash = createHash('sha256');
  /** Bytes read from the file (hashed), and sent. */
  #read = 0;
  #sent = 0;
  /** A resume: the prefix the receiver holds, checked against ours before sending the rest. */
  #claim: { offset: number; prefix: string } | null = null;
  #waitingForDrain = false;
  /** In a room: the member it is offered to (through the host). */
  readonly to: string | undefined;

  constructor(lane: FileLane, id: number, source: Source, to?: string) {
    super(lane, id, source.name, source.size);
    this.#source = source;
    this.to = to;
  }

  /** Stops sending; the receiver is told. */
  cancel(why: string): void {
    if (this.ended) return;
    this.lane.link.sendFileFrame({ type: 'cancel', file: this.id, why });
    this.end({ state: 'failed', why });
  }

  take(frame: FileFrame, release: () => void): void {
    release();
    switch (frame.type) {
      case 'accept':
        if (this.state !== 'offered') return;
        if (frame.offset > 0 && frame.offset <= this.size && frame.prefix) this.#claim = { offset: frame.offset, prefix: frame.prefix };
        return this.#open();
      case 'got':
        if (this.state !== 'active' || frame.bytes > this.#sent) return;
        this.progress(frame.bytes);
        return this.#pump();
      case 'received':
        if (this.state === 'active' && this.#sent === this.size) this.end({ state: 'done' });
        return;
      case 'decline':
        return this.end({ state: this.state === 'offered' ? 'declined' : 'failed', why: frame.why });
      default:
        return; // the sender's own kinds of frame: not ours to take
    }
  }

  lost(why: string): void {
    this.end({ state: 'failed', why });
  }

  protected stop(): void {
    this.#reader?.destroy();
    this.#reader = null;
  }

  #open(): void {
    this.stop();
    this.#hash = createHash('sha256');
    this.#read = 0;
    const reader = this.#source.open();
    this.#reader = reader;
    // A reader given up (to start over) may still say what it had buffered: only the current one counts.
    reader.on('data', (data: Buffer) => reader === this.#reader && this.#onData(data));
    reader.on('end', () => reader === this.#reader && this.#onEnd());
    reader.on('error', (error: Error) => reader === this.#reader && this.cancel(`cannot read it: ${error.message}`));
    if (!this.#claim) this.#start(0);
  }

  #start(offset: number): void {
    this.activate(offset);
    this.#sent = offset;
    this.lane.link.sendFileFrame({ type: 'start', file: this.id, offset });
    this.lane.emit('progress', this);
  }

  #onData(data: Buffer): void {
    if (this.ended) return;
    if (this.#read + data.length > this.size) return this.cancel('the file grew while it was being sent');
    const claim = this.#claim;
    if (claim && this.#read < claim.offset) {
      // The receiver's prefix: hashed, not sent.
      const held = Math.min(data.length, claim.offset - this.#read);
      this.#hash.update(data.subarray(0, held));
      this.#read += held;
      data = data.subarray(held);
      if (this.#read < claim.offset) return;
      this.#claim = null;
      if (this.#hash.copy().digest('hex') !== claim.prefix) return this.#open(); // not the same bytes: from the start
      this.#start(claim.offset);
      if (data.length === 0) return;
    }
    this.#hash.update(data);
    this.#read += data.length;
    const { recycle } = this.#source;
    // Written in order: once the last piece is, the whole buffer is free again.
    const sent = recycle && ((): void => recycle(data));
    for (let at = 0; at < data.length; at += CHUNK_BYTES) {
      const piece = data.subarray(at, at + CHUNK_BYTES);
      this.#sent += piece.length;
      if (!this.lane.link.sendChunk(this.id, piece, at + CHUNK_BYTES >= data.length ? sent : undefined)) this.#waitingForDrain = true;
    }
    this.#pump();
  }

  /** Reads on while the socket takes more and the receiver is within the window. */
  #pump(): void {
    const reader = this.#reader;
    if (!reader || this.ended) return;
    if (this.#waitingForDrain || this.#sent - this.bytes >= WINDOW_BYTES) reader.pause();
    else reader.resume();
  }

  /** The socket drained. */
  drained(): void {
    this.#waitingForDrain = false;
    this.#pump();
  }

  #onEnd(): void {
    if (this.ended || this.#claim) {
      // The file is shorter than the prefix the receiver claims to hold: it is not that file.
      if (this.#claim) {
        this.#claim = null;
        this.#open();
      }
      return;
    }
    if (this.#read !== this.size) return this.cancel('the file shrank while it was being sent');
    this.#reader = null;
    this.lane.link.sendFileFrame({ type: 'sent', file: this.id, sha256: this.#hash.digest('hex') });
  }
}

/** A file offered to us. */
export class IncomingTransfer extends Transfer {
  readonly direction = 'in';
  /** The offer's key: with the sender's identity, it finds a partial file to resume. */
  readonly key: string;
  /** In a room: the member who offers it (the host relays it). */
  readonly from: string | undefined;
  #destination: Destination | null = null;
  #sink: Writable | null = null;
  #hash: Hash | null = null;
  #received = 0;
  #reported = 0;
  #sentHash: string | null = null;
  /** Accepted, waiting for the sender's start. */
  #accepted = false;

  constructor(lane: FileLane, offer: Extract<FileFrame, { type: 'offer' }>) {
    super(lane, offer.file, offer.name, offer.bytes);
    this.key = offer.key;
    this.from = offer.from;
  }

  get accepted(): boolean {
    return this.#accepted;
  }

  /** Takes the file into `destination` (resuming from what it holds). */
  accept(destination: Destination): void {
    if (this.state !== 'offered' || this.#accepted) return;
    this.#accepted = true;
    this.#destination = destination;
    const offset = destination.offset <= this.size ? destination.offset : 0;
    this.lane.link.sendFileFrame(
      offset > 0
        ? { type: 'accept', file: this.id, offset, prefix: destination.prefix.copy().digest('hex') }
        : { type: 'accept', file: this.id, offset: 0 },
    );
  }

  /** Refuses the offer, or gives up on the file. */
  decline(why: string): void {
    if (this.ended) return;
    this.lane.link.sendFileFrame({ type: 'decline', file: this.id, why });
    this.end({ state: this.state === 'offered' ? 'declined' : 'failed', why });
  }

  take(frame: FileFrame, release: () => void): void {
    switch (frame.type) {
      case 'start':
        release();
        return this.#start(frame.offset);
      case 'chunk':
        return this.#write(frame.parts, release);
      case 'sent':
        release();
        if (this.state !== 'active') return;
        if (this.#received !== this.size) return this.decline(`${this.#received} bytes came of the ${this.size} offered`);
        this.#sentHash = frame.sha256;
        this.#sink!.end();
        return;
      case 'cancel':
        release();
        // What arrived stays in the partial file, for a resume.
        return this.end({ state: this.state === 'offered' ? 'declined' : 'failed', why: frame.why });
      default:
        release();
    }
  }

  lost(why: string): void {
    this.end({ state: 'failed', why });
  }

  protected stop(): void {
    const sink = this.#sink;
    this.#sink = null;
    if (sink && !sink.writableFinished) sink.end(); // keep what was written: the partial file is the resume
  }

  #start(offset: number): void {
    const destination = this.#destination;
    if (!this.#accepted || !destination || this.state !== 'offered') return;
    if (offset !== 0 && offset !== destination.offset) return this.decline(`it started at byte ${offset}, not where we are`);
    this.#hash = offset === 0 ? createHash('sha256') : destination.prefix;
    this.#received = offset;
    this.#reported = offset;
    this.activate(offset);
    const sink = destination.open(offset);
    this.#sink = sink;
    sink.on('error', (error: Error) => this.decline(`cannot write it: ${error.message}`));
    // 'close': the file is whole on disk and its descriptor closed, so it may be renamed.
    sink.on('close', () => void this.#verify());
    this.lane.emit('progress', this);
  }

  #write(parts: Buffer[], release: () => void): void {
    const sink = this.#sink;
    if (this.state !== 'active' || !sink || this.#sentHash !== null) return release();
    let length = 0;
    for (const part of parts) length += part.length;
    if (this.#received + length > this.size) {
      release();
      return this.decline('more bytes came than were offered');
    }
    this.#received += length;
    for (const part of parts) this.#hash!.update(part);
    // The window bounds what is held here; the last write's callback frees them all (writes complete in order).
    parts.forEach((part, i) => sink.write(part, i === parts.length - 1 ? () => this.#written(length, release) : undefined));
    if (parts.length === 0) release();
  }

  #written(length: number, release: () => void): void {
    release();
    if (this.ended) return;
    const bytes = this.bytes + length;
    this.progress(bytes);
    if (bytes - this.#reported >= GOT_EVERY_BYTES || bytes === this.size) {
      this.#reported = bytes;
      this.lane.link.sendFileFrame({ type: 'got', file: this.id, bytes });
    }
  }

  async #verify(): Promise<void> {
    if (this.ended || this.#sentHash === null) return;
    const destination = this.#destination!;
    if (this.#hash!.digest('hex') !== this.#sentHash) {
      await destination.discard().catch(() => {});
      return this.decline('the data did not match its SHA-256');
    }
    let savedAs: string;
    try {
      savedAs = await destination.keep();
    } catch (error) {
      return this.decline(`cannot keep it: ${(error as Error).message}`);
    }
    if (this.ended) return;
    this.lane.link.sendFileFrame({ type: 'received', file: this.id });
    this.end({ state: 'done', savedAs });
  }
}

export interface FileLane {
  /** A peer offers a file: `accept` or `decline` it. */
  on(event: 'offer', listener: (transfer: IncomingTransfer) => void): this;
  /** More of a transfer is written (or it started). */
  on(event: 'progress', listener: (transfer: IncomingTransfer | OutgoingTransfer) => void): this;
  on(event: 'end', listener: (transfer: IncomingTransfer | OutgoingTransfer, end: TransferEnd) => void): this;
}

/**
 * The transfers of one session, both ways: it numbers our offers, routes the
 * peer's file frames to theirs, and says when every transfer is over.
 */
export class FileLane extends EventEmitter {
  readonly link: FileLink;
  #nextId = 1;
  #outgoing = new Map<number, OutgoingTransfer>();
  #incoming = new Map<number, IncomingTransfer>();

  constructor(link: FileLink) {
    super();
    this.link = link;
    link.on('file', (frame: FileFrame, release: () => void) => this.#take(frame, release));
    link.on('drain', () => {
      for (const transfer of this.#outgoing.values()) transfer.drained();
    });
  }

  /** Offers a file to the peer (in a room: to the member `to`, through the host). */
  offer(source: Source, to?: string): OutgoingTransfer {
    const transfer = new OutgoingTransfer(this, this.#nextId++, source, to);
    this.#outgoing.set(transfer.id, transfer);
    const offer = { type: 'offer', file: transfer.id, name: source.name, bytes: source.size, key: source.key } as const;
    this.link.sendFileFrame(to === undefined ? offer : { ...offer, to });
    return transfer;
  }

  /** Transfers not over yet, both ways. */
  get pending(): Array<IncomingTransfer | OutgoingTransfer> {
    return [...this.#outgoing.values(), ...this.#incoming.values()];
  }

  /** The session is over: every transfer still going fails, with `why`. */
  close(why: string): void {
    for (const transfer of this.pending) transfer.lost(why);
  }

  /** A transfer ended: frames about it are ignored from now on. */
  forget(transfer: Transfer): void {
    (transfer.direction === 'out' ? this.#outgoing : this.#incoming).delete(transfer.id);
  }

  #take(frame: FileFrame, release: () => void): void {
    if (frame.type === 'offer') {
      release();
      if (this.#incoming.has(frame.file)) return;
      const transfer = new IncomingTransfer(this, frame);
      this.#incoming.set(frame.file, transfer);
      this.emit('offer', transfer);
      return;
    }
    // The frame's type says whose offer it is about: ours (the receiver answers) or the peer's.
    const ours = frame.type === 'accept' || frame.type === 'decline' || frame.type === 'got' || frame.type === 'received';
    const transfer = ours ? this.#outgoing.get(frame.file) : this.#incoming.get(frame.file);
    if (transfer) transfer.take(frame, release);
    else release();
  }
}
