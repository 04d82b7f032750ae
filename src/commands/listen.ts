import { AllowList, formatAddress } from '../address.js';
import { Door, type Admitted, type DoorPolicy } from '../door.js';
import { exitCode, LanchatError, signalExitCode, usageError } from '../errors.js';
import { loadIdentity } from '../identity.js';
import { chatOptions, mdnsAllowed, mdnsOff, withLog, type ChatEnd, type CliContext, type SessionFlags } from '../options.js';
import { openServer } from '../transport.js';
import type { AddressInfo, Server } from 'node:net';
import type { Announcer } from '../discovery.js';
import { loadKeyBook } from '../trust.js';
import { Chat } from '../chat.js';
import { Inbox } from '../inbox.js';
import { resolve } from 'node:path';

export interface ListenFlags extends SessionFlags, DoorPolicy {
  host?: string;
  keep?: boolean;
  allow?: string[];
  idleTimeout?: number;
  /** Host a room: true, or its name. */
  room?: string | true;
  maxPeers?: number;
  /** --announce (true), --no-announce (false), else `lanchat config announce`. */
  announce?: boolean;
  /** Take the files peers offer into this directory, without asking. */
  acceptFiles?: string;
  maxFileSize?: number;
}

/**
 * Reads the contacts and known peers once before listening, so that a broken
 * file is said at the start. Listening goes on without them (what to say after
 * `listening on`), except under --known-only, which cannot admit anyone then.
 */
async function checkKeyBook(flags: ListenFlags, ctx: CliContext): Promise<string> {
  try {
    await loadKeyBook(ctx.env);
    return '';
  } catch (error) {
    if (flags.knownOnly || !(error instanceof LanchatError)) throw error;
    return `lanchat: listening anyway, but the contacts could not be read, so no peer is recognised by its key: ${error.message}\n`;
  }
}

/** Members a room takes at most, unless --max-peers says otherwise. */
export const DEFAULT_MAX_PEERS = 50;

/** `lanchat listen <port>`: wait for a peer, chat, and (with --keep) wait again. */
export async function listen(port: number, flags: ListenFlags, ctx: CliContext): Promise<number> {
  const end: ChatEnd = {};
  const code = await listenUntilDone(port, flags, ctx, end);
  return withLog(code, end);
}

async function listenUntilDone(port: number, flags: ListenFlags, ctx: CliContext, end: ChatEnd): Promise<number> {
  if (flags.room === undefined && flags.maxPeers !== undefined) throw usageError('--max-peers is for a room (--room)');
  if (flags.room !== undefined && flags.keep) throw usageError('--keep is for one peer at a time; a room takes everyone (--room)');
  const allow = flags.allow ? new AllowList(flags.allow) : null;
  // A directory files cannot go to is said before listening, not when the first file comes.
  if (flags.acceptFiles !== undefined) await new Inbox(resolve(ctx.cwd, flags.acceptFiles)).open();
  const options = await chatOptions(flags, ctx, 'listen', {
    idleMs: flags.idleTimeout === undefined ? undefined : flags.idleTimeout * 1000,
    keep: flags.keep,
    ...(flags.acceptFiles !== undefined && { acceptFiles: flags.acceptFiles }),
    ...(flags.maxFileSize !== undefined && { maxFileSize: flags.maxFileSize }),
  });
  const identity = await loadIdentity(ctx.env); // to serve connectors that ask for TLS
  const unreadBook = await checkKeyBook(flags, ctx);
  const announcing = await wantsAnnounce(flags, ctx);
  const { server, address } = await openServer(flags.host, port);
  const roomName = flags.room === undefined ? undefined : flags.room === true ? options.nick : flags.room;
  let announcer: Announcer | null = null;
  let notAnnounced = '';
  try {
    if (announcing) announcer = await announceListener(server, options.nick, identity.fingerprint, roomName);
  } catch (error) {
    // Asked for on the command line, announcing must work; as a saved setting, listening goes on without.
    if (announcing !== 'setting' || !(error instanceof LanchatError)) {
      server.close();
      throw error;
    }
    notAnnounced = `lanchat: not announced (lanchat config announce is on): ${error.message}\n`;
  }
  const chat = new Chat(ctx, { ...options, onNickChange: (nick) => announcer?.update({ nick }) });
  const log = (line: string): void => chat.note(line); // above a half-typed line, at a terminal
  const door = new Door({ policy: flags, identity, env: ctx.env, allow, log });
  const announced = announcer ? `announced as ${options.nick}` : '';
  if (roomName !== undefined) {
    ctx.stderr.write(`listening on ${address} (room ${roomName}${announcer ? `, ${announced}` : ''})\n${notAnnounced}${unreadBook}`);
    return hostRoom(chat, door, server, { name: roomName, maxMembers: flags.maxPeers ?? DEFAULT_MAX_PEERS }, end, announcer);
  }
  ctx.stderr.write(`listening on ${address}${announcer ? ` (${announced})` : ''}\n${notAnnounced}${unreadBook}`);

  // Where an admitted peer goes: the one seat. A peer let in while a chat
  // runs is turned away — unless the seat is held by a peer that has said
  // nothing and been told nothing: that one gives way to a peer that speaks
  // (a port scanner or a stray client must not keep everyone out).
  let handOver: ((peer: Admitted | null) => void) | null = null;
  /** Who is in the chat, and a peer that spoke while they had not: it sits down once that session has ended. */
  const seat: { holder: Admitted | null; next: Admitted | null } = { holder: null, next: null };
  const where = (peer: Admitted): string => formatAddress(peer.from.host, peer.from.port);
  function onAdmitted(peer: Admitted): void {
    if (handOver) {
      handOver(peer);
      handOver = null;
    } else if (seat.holder?.quiet?.() && !peer.quiet && !seat.next) {
      log(`closed ${where(seat.holder)}: it said nothing, and ${where(peer)} came to talk`);
      seat.holder.stream.write('lanchat: someone else came to talk, and you had said nothing: closing\n');
      seat.next = peer;
      chat.endSession({ handOn: true });
    } else {
      void door.turnAway(peer, 'busy');
    }
  }
  door.on('admitted', onAdmitted);
  server.on('connection', door.take);
  const nextPeer = (): Promise<Admitted | null> => new Promise((resolve) => (handOver = resolve));
  const onAbort = (): void => handOver?.(null);
  ctx.signal.addEventListener('abort', onAbort);

  let code = 0;
  let endOfInput = false; // Ctrl-D or /quit at the keyboard while nobody is connected
  try {
    for (;;) {
      if (ctx.signal.aborted) return signalExitCode(ctx.signal.reason) ?? 1;
      let peer = seat.next;
      seat.next = null;
      if (!peer) {
        chat.idle({
          listening: address,
          onQuit: () => {
            endOfInput = true;
            handOver?.(null);
          },
        });
        peer = await nextPeer();
      }
      if (!peer) return endOfInput ? code : (signalExitCode(ctx.signal.reason) ?? 1);
      seat.holder = peer;
      code = exitCode(await chat.run(peer.stream, peer.from, peer.security));
      seat.holder = null;
      // A silent peer that gave its seat away was no session: the one that came to talk is.
      if (seat.next && !ctx.signal.aborted && code < 128 && !chat.outputBroken) continue;
      // Ctrl-C at the prompt (130) ends the listener too, not just the session,
      // and so does losing our stdout: nothing could be delivered any more.
      if (!flags.keep || ctx.signal.aborted || code >= 128 || chat.outputBroken) return code;
      ctx.stderr.write(`listening on ${address}\n`);
    }
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    await announcer?.stop(); // the goodbye: gone from every browser now
    server.off('connection', door.take);
    server.close();
    // Whoever is still at the door is told, not just dropped — within a second.
    if (seat.next) void door.turnAway(seat.next, 'stopped');
    await door.close();
    door.off('admitted', onAdmitted);
    end.logComplete = await chat.close();
  }
}

/**
 * `listen --room`: every peer the door admits joins the room (while there is
 * room for it), and the host's user takes part from this chat until it leaves.
 */
async function hostRoom(
  chat: Chat,
  door: Door,
  server: Server,
  options: { name: string; maxMembers: number },
  end: ChatEnd,
  announcer: Announcer | null,
): Promise<number> {
  const room = chat.openRoom(options);
  const onAdmitted = (peer: Admitted): void => {
    if (room.isFull) void door.turnAway(peer, 'full');
    else room.join(peer);
  };
  // The announcement says how many people are in (the host too): kept true as they come and go.
  const onSizeChange = (): void => announcer?.update({ room: { name: room.name, size: room.size + 1 } });
  room.on('joined', onSizeChange);
  room.on('left', onSizeChange);
  door.on('admitted', onAdmitted);
  server.on('connection', door.take);
  try {
    return exitCode(await chat.host(room));
  } finally {
    room.off('joined', onSizeChange);
    room.off('left', onSizeChange);
    await announcer?.stop();
    server.off('connection', door.take);
    server.close();
    await door.close();
    door.off('admitted', onAdmitted);
    end.logComplete = await chat.close();
  }
}

/**
 * Whether to announce, and who asked: --announce ('flag'), --no-announce
 * (false), else the saved setting ('setting'; not when multicast DNS is off
 * here, where --announce is refused).
 */
async function wantsAnnounce(flags: ListenFlags, ctx: CliContext): Promise<'flag' | 'setting' | false> {
  if (flags.announce !== undefined) {
    if (flags.announce && !mdnsAllowed(ctx.env)) throw mdnsOff('cannot announce this listener');
    return flags.announce && 'flag';
  }
  const { savedAnnounce } = await import('../settings.js');
  return mdnsAllowed(ctx.env) && (await savedAnnounce(ctx.env)) === true && 'setting';
}

/** Publishes the listener: on the interface of --host when given (with that address only), else on every interface. */
async function announceListener(server: Server, nick: string, fingerprint: string, room: string | undefined): Promise<Announcer> {
  const { announce, ANNOUNCED_VERSION } = await import('../discovery.js');
  const bound = server.address() as AddressInfo; // a host name given to --host is an address by now
  const only = ['0.0.0.0', '::'].includes(bound.address) ? undefined : bound.address;
  return announce({
    port: bound.port,
    address: only,
    nick,
    fingerprint,
    version: ANNOUNCED_VERSION,
    ...(room !== undefined && { room: { name: room, size: 1 } }), // the host, until members come
  });
}
