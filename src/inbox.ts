// Where received files land: a safe name for what a peer offered, a partial
// file per offered file that a cut transfer resumes from, and a final name
// that never replaces anything already there.
//
// Nothing here fsyncs: the receiver checks the whole file's SHA-256 before
// keep() names it, and a crash only leaves a partial that the next offer of
// the same file resumes from after hashing its prefix again, so an fsync per
// file would cost time and buy nothing.
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, link as linkFile, open as openFile, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { LanchatError } from './errors.js';
import { fsProblem } from './store.js';
import { graphemes } from './terminal.js';

/** The longest file name (in UTF-8 bytes) that every common file system takes. */
const NAME_BYTES = 255;
/** The name kept when nothing of the offered one is left. */
const FALLBACK_NAME = 'file';
/** An extension this long or shorter (in bytes) survives cutting and numbering. */
const EXTENSION_BYTES = 64;
/** A partial file is `.NAME.KEY.lanchat-part`: hidden, and not a name keep() ever gives. */
const PARTIAL_SUFFIX = '.lanchat-part';
const KEY = /^[0-9a-f]{16,64}$/;
/** "report (1).pdf" up to this many: past it something is wrong, not busy. */
const MAX_COPIES = 9999;
/** How much of a partial prefixHash reads at a time. */
const READ_BYTES = 1024 * 1024;

// What a file name must not hold because nobody sees it: controls (C0, C1,
// DEL), format characters (bidi controls, zero-width ones), lone surrogates,
// line and paragraph separators, noncharacters and the other default-ignorable
// characters (Hangul fillers, …). Kept: variation selectors (❤️) and a ZWJ
// between two pictographs (👨‍👩‍👧), which draw as one emoji.
const INVISIBLE = new RegExp(
  String.raw`(?![\u{fe00}-\u{fe0f}\u{e0100}-\u{e01ef}])(?!(?<=\p{Extended_Pictographic}(?:\u{fe0f}|\p{Emoji_Modifier})?)\u200d(?=\p{Extended_Pictographic}))` +
    String.raw`[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}\p{Default_Ignorable_Code_Point}]`,
  'gu',
);
/** What Windows forbids in a name (the separators / and \ are gone by then). */
const WINDOWS_FORBIDDEN = /[<>:"|?*]/g;
/** Windows devices, which Windows opens instead of a file whatever the extension ("con.txt") and the case: refused on every platform, as files travel. */
const DEVICE = /^(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³])\s*(?:\.|$)/i;
/** An extension to keep apart from the stem: the last one, and ".tar" before it ("x.tar.gz"). */
const EXTENSION = /^(.+?)((?:\.tar)?\.[^.\s]+)$/i;

const bytesOf = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * The longest start of `text` that fits in `maxBytes` of UTF-8, cut between
 * characters as people see them (an emoji or an accented letter stays whole);
 * between code points only when a single such character is longer than that.
 */
function cutToBytes(text: string, maxBytes: number): string {
  if (bytesOf(text) <= maxBytes) return text;
  let kept = '';
  for (const segment of graphemes(text)) {
    if (bytesOf(kept + segment) > maxBytes) break;
    kept += segment;
  }
  if (kept !== '') return kept;
  for (const char of text) {
    if (bytesOf(kept + char) > maxBytes) break;
    kept += char;
  }
  return kept.replace(/\u200d+$/, '');
}

/** A name's stem and extension ("report", ".pdf"); no extension when it is too long to be one. */
function splitExtension(name: string): { stem: string; extension: string } {
  const [, stem, extension] = EXTENSION.exec(name) ?? [];
  if (stem === undefined || extension === undefined || bytesOf(extension) > EXTENSION_BYTES) return { stem: name, extension: '' };
  return { stem, extension };
}

/** `stem` + `tail`, the stem cut if need be so that it fits in a file name (and then not ending in a dot or a space). */
function fitName(stem: string, tail: string): string {
  const cut = cutToBytes(stem, NAME_BYTES - bytesOf(tail));
  return (cut === stem ? stem : cut.replace(/[\s.]+$/u, '')) + tail;
}

/** A safe base name for a file a peer offered (never empty: 'file' when nothing is left). */
export function safeFileName(offered: string): string {
  const visible = offered.replace(INVISIBLE, '').normalize('NFC');
  // Only the last segment of a path, be it a POSIX or a Windows one ("dir/" is "dir").
  const segment =
    visible
      .split(/[/\\]/)
      .filter((part) => part !== '')
      .at(-1) ?? '';
  let name = segment
    .replace(WINDOWS_FORBIDDEN, '_')
    // No hidden files (nor "." or ".."), no names that start with blanks, and
    // none that end in dots or spaces (Windows drops those: "a." is "a").
    .replace(/^[\s.]+/u, '')
    .replace(/[\s.]+$/u, '');
  if (name === '') return FALLBACK_NAME;
  if (DEVICE.test(name)) name = `_${name}`;
  if (bytesOf(name) <= NAME_BYTES) return name;
  const { stem, extension } = splitExtension(name);
  return fitName(stem, extension);
}

/** `name` itself (n = 0), else its n-th copy: "report (1).pdf", "README (2)", cut to fit. */
function numberedName(name: string, n: number): string {
  if (n === 0) return name;
  const { stem, extension } = splitExtension(name);
  return fitName(stem, ` (${n})${extension}`);
}

/** The partial file of `name` and `key`: the same file offered again finds it. */
function partialName(name: string, key: string): string {
  const tail = `.${key}${PARTIAL_SUFFIX}`;
  return `.${cutToBytes(name, NAME_BYTES - 1 - bytesOf(tail))}${tail}`;
}

export interface Reservation {
  /** The safe base name the file will be kept under (keep() may add " (1)" etc.). */
  name: string;
  /** The partial file the data goes to (created if new, in the inbox directory). */
  partialPath: string;
  /** Bytes already in the partial file from an earlier, cut transfer of the same file (0: new). */
  offset: number;
}

export interface InboxOptions {
  /** Bytes free for us in `dir` (default: fs.statfs, the blocks an unprivileged user may take). */
  freeSpace?: (dir: string) => Promise<number>;
  /** fs.promises.link; tests stand in one that fails as on FAT or exFAT, which have no hard links. */
  link?: (existingPath: string, newPath: string) => Promise<void>;
}

async function statfsFreeSpace(dir: string): Promise<number> {
  const { bavail, bsize } = await statfs(dir);
  return bavail * bsize;
}

const errorCode = (error: unknown): unknown => (error as NodeJS.ErrnoException).code;
const inboxError = (what: string, error: unknown): LanchatError => new LanchatError('ERR_INBOX', `${what}: ${fsProblem(error)}`);

/** Errors of link() that mean "this file system has no hard links", not "that name is taken". */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

// Opens a partial for reading and writing; never through a symbolic link that
// someone put in its place (O_NOFOLLOW is 0 where it does not exist).
const PARTIAL_FLAGS = constants.O_RDWR | constants.O_NOFOLLOW;

/** A directory received files go to. */
export class Inbox {
  readonly dir: string;
  readonly #freeSpace: (dir: string) => Promise<number>;
  readonly #link: (existingPath: string, newPath: string) => Promise<void>;

  constructor(dir: string, options: InboxOptions = {}) {
    this.dir = dir;
    this.#freeSpace = options.freeSpace ?? statfsFreeSpace;
    this.#link = options.link ?? linkFile;
  }

  /** Checks that dir exists, is a directory and writable; LanchatError (one clear line) otherwise. */
  async open(): Promise<void> {
    try {
      if (!(await stat(this.dir)).isDirectory()) throw new LanchatError('ERR_INBOX', `${this.dir} is not a directory`);
      await access(this.dir, constants.W_OK | constants.X_OK);
    } catch (error) {
      if (error instanceof LanchatError) throw error;
      if (errorCode(error) === 'ENOENT') throw new LanchatError('ERR_INBOX', `${this.dir}: no such directory`);
      throw inboxError(`cannot write to ${this.dir}`, error);
    }
  }

  /**
   * Refuses up front (LanchatError ERR_FILE_TOO_BIG when size > maxFileSize,
   * ERR_NO_SPACE when the file system lacks size - offset bytes), else finds
   * the partial of this `key` (resume) or creates an empty one. key:
   * [0-9a-f]{16,64}, chosen by the caller (it identifies sender + file). A
   * partial longer than size is started over (truncated to 0).
   */
  async reserve(offer: { name: string; size: number; key: string }, limits: { maxFileSize?: number } = {}): Promise<Reservation> {
    const { size, key } = offer;
    if (!Number.isSafeInteger(size) || size < 0) throw new LanchatError('ERR_BAD_OFFER', `not a file size: ${size}`);
    if (!KEY.test(key)) throw new LanchatError('ERR_BAD_OFFER', 'a file key is 16 to 64 hex digits (lower case)');
    const name = safeFileName(offer.name);
    const { maxFileSize } = limits;
    if (maxFileSize !== undefined && size > maxFileSize) {
      throw new LanchatError('ERR_FILE_TOO_BIG', `${name} is too big: ${size} bytes, the limit is ${maxFileSize}`);
    }
    const partialPath = join(this.dir, partialName(name, key));
    const { handle, created } = await openPartial(partialPath);
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new LanchatError('ERR_INBOX', `${partialPath} is not a regular file: remove it`);
      let offset = stats.size;
      if (offset > size) {
        await handle.truncate(0);
        offset = 0;
      }
      const needed = size - offset;
      const free = await this.#freeSpace(this.dir);
      if (free < needed) {
        if (created) await unlink(partialPath).catch(ignoreMissing);
        throw new LanchatError('ERR_NO_SPACE', `no space for ${name} in ${this.dir}: it needs ${needed} bytes, ${free} are free`);
      }
      return { name, partialPath, offset };
    } catch (error) {
      if (error instanceof LanchatError) throw error;
      throw inboxError(`cannot use ${partialPath}`, error);
    } finally {
      await handle.close();
    }
  }

  /** A SHA-256 hash object fed with the first `offset` bytes of the partial (one read), for checking a resumed prefix and then continuing to hash the rest. */
  async prefixHash(reservation: Reservation): Promise<Hash> {
    const hash = createHash('sha256');
    const partialPath = this.#partialOf(reservation);
    let handle: FileHandle | undefined;
    try {
      handle = await openFile(partialPath, constants.O_RDONLY | constants.O_NOFOLLOW);
      const buffer = Buffer.allocUnsafe(Math.min(READ_BYTES, reservation.offset));
      for (let done = 0; done < reservation.offset;) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, reservation.offset - done), done);
        if (bytesRead === 0) throw new LanchatError('ERR_INBOX', `${partialPath} is shorter than the ${reservation.offset} bytes received`);
        hash.update(buffer.subarray(0, bytesRead));
        done += bytesRead;
      }
      return hash;
    } catch (error) {
      if (error instanceof LanchatError) throw error;
      throw inboxError(`cannot read ${partialPath}`, error);
    } finally {
      await handle?.close();
    }
  }

  /**
   * Gives the complete, verified partial its final name, never replacing
   * anything: "report.pdf", else "report (1).pdf", "report (2).pdf"… Returns
   * the final base name.
   *
   * link() makes the name only if nobody has it, in one step that cannot race
   * with another keep() or another program; then the partial's own name goes.
   * File systems without hard links (FAT, exFAT) get the name claimed by an
   * exclusive create first, then the partial renamed over that empty file of
   * ours: nobody else's file is ever replaced there either.
   */
  async keep(reservation: Reservation): Promise<string> {
    const partialPath = this.#partialOf(reservation);
    const name = safeFileName(reservation.name);
    for (let n = 0; n <= MAX_COPIES; n++) {
      const candidate = numberedName(name, n);
      const finalPath = join(this.dir, candidate);
      try {
        if (!(await this.#claim(partialPath, finalPath))) continue;
        return candidate;
      } catch (error) {
        throw inboxError(`cannot keep ${candidate} in ${this.dir}`, error);
      }
    }
    throw new LanchatError('ERR_INBOX', `cannot keep ${name} in ${this.dir}: ${MAX_COPIES} copies are there already`);
  }

  /** Removes the partial (its hash did not match). */
  async discard(reservation: Reservation): Promise<void> {
    const partialPath = this.#partialOf(reservation);
    await unlink(partialPath).catch((error: unknown) => {
      if (errorCode(error) !== 'ENOENT') throw inboxError(`cannot remove ${partialPath}`, error);
    });
  }

  /** Moves the partial to `finalPath` if nothing has that name; false when something has. */
  async #claim(partialPath: string, finalPath: string): Promise<boolean> {
    try {
      await this.#link(partialPath, finalPath);
    } catch (error) {
      if (errorCode(error) === 'EEXIST') return false;
      if (!NO_HARD_LINKS.has(errorCode(error) as string)) throw error;
      try {
        await (await openFile(finalPath, 'wx')).close();
      } catch (createError) {
        if (errorCode(createError) === 'EEXIST') return false;
        throw createError;
      }
      await rename(partialPath, finalPath);
      return true;
    }
    await unlink(partialPath);
    return true;
  }

  /** The partial a reservation names, if it is one of this inbox's (never any other file). */
  #partialOf({ partialPath }: Reservation): string {
    const file = basename(partialPath);
    if (join(this.dir, file) !== partialPath || !file.startsWith('.') || !file.endsWith(PARTIAL_SUFFIX)) {
      throw new LanchatError('ERR_INBOX', `${partialPath} is not a partial file of ${this.dir}`);
    }
    return partialPath;
  }
}

function ignoreMissing(error: unknown): void {
  if (errorCode(error) !== 'ENOENT') throw error;
}

/** Opens the partial at `path`, created empty if new (`created`); never through a symbolic link put there. */
async function openPartial(path: string): Promise<{ handle: FileHandle; created: boolean }> {
  let handle: FileHandle;
  let created = true;
  try {
    handle = await openFile(path, PARTIAL_FLAGS | constants.O_CREAT | constants.O_EXCL).catch((error: unknown) => {
      if (errorCode(error) !== 'EEXIST') throw error;
      created = false;
      return openFile(path, PARTIAL_FLAGS | constants.O_NONBLOCK);
    });
  } catch (error) {
    if (errorCode(error) === 'ELOOP') throw new LanchatError('ERR_INBOX', `${path} is a symbolic link, not a partial file: remove it`);
    throw inboxError(`cannot open ${path}`, error);
  }
  return { handle, created };
}
