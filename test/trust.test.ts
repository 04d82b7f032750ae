// Who a peer may be passing itself off as: look-alike names by their Unicode
// confusable skeleton (UTS #39), and the warnings a claimed nick gets.
import { chmodSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONTACTS_FILE, saveContact } from '../src/contacts.js';
import { storePath } from '../src/store.js';
import { shortFingerprint } from '../src/fingerprint.js';
import { KeyBookReader, impostorWarning, nameSkeleton, type KeyBook } from '../src/trust.js';

const ALICE = `AA${':AA'.repeat(31)}`;
const OTHER = `BB${':BB'.repeat(31)}`;
const book: KeyBook = {
  contacts: [
    { name: 'alice', host: '10.0.0.4', port: 5000, fingerprint: ALICE },
    { name: 'carol', host: '10.0.0.5', port: 5000 }, // no key pinned yet
  ],
  peers: {},
};

describe('nameSkeleton', () => {
  it.each([
    ['alice', '\u0430lice', 'Cyrillic а for Latin a'],
    ['alice', 'ａｌｉｃｅ', 'fullwidth letters'],
    ['alice', 'ALICE', 'case'],
    ['alice', 'AL\u0399CE', 'Greek capital iota for I'],
    ['bob', 'b\u043eb', 'Cyrillic о for Latin o'],
    ['mallory', 'rnallory', 'rn for m'],
    ['paypal', 'paypa1', 'digit 1 for l'],
    ['zoë', 'zoe\u0308', 'a combining diaeresis'],
  ])('%s and %s look alike (%s)', (a, b) => {
    expect(nameSkeleton(a)).toBe(nameSkeleton(b));
  });

  it.each([
    ['alice', 'alicia'],
    ['bob', 'rob'],
    ['zoë', 'zoe'],
  ])('%s and %s do not', (a, b) => {
    expect(nameSkeleton(a)).not.toBe(nameSkeleton(b));
  });
});

describe('impostorWarning', () => {
  const OURS = `CC${':CC'.repeat(31)}`;
  const KEYS: Record<string, string | null> = { "alice's key": ALICE, 'another key': OTHER, 'our own key': OURS, 'no key': null };
  it.each([
    // nick claimed, key presented, own nick, the warning's first line (null: none)
    ['alice', "alice's key", 'bob', null],
    ['Alice', 'another key', 'bob', "WARNING: the peer calls itself Alice, but its key is not contact alice's: it may not be alice"],
    ['alice', 'no key', 'bob', "WARNING: the peer calls itself alice, but its key is not contact alice's: it may not be alice"],
    [
      '\u0430lice',
      'another key',
      'bob',
      'WARNING: the peer calls itself \u0430lice (\\u0430lice), a look-alike of contact alice: it may not be alice',
    ],
    [
      'ａｌｉｃｅ',
      'another key',
      'bob',
      'WARNING: the peer calls itself ａｌｉｃｅ (\\uff41\\uff4c\\uff49\\uff43\\uff45), a look-alike of contact alice: it may not be alice',
    ],
    ['\u0430lice', "alice's key", 'bob', null], // alice herself, under a look-alike nick
    [
      '\u0441arol',
      'another key',
      'bob',
      'WARNING: the peer calls itself \u0441arol (\\u0441arol), a look-alike of contact carol: it may not be carol',
    ],
    ['carol', 'another key', 'bob', null], // carol's very name, and no key of hers to compare
    ['bob', 'another key', 'bob', 'WARNING: the peer calls itself bob, your own nick: its messages may pass for yours'],
    ['BOB', "alice's key", 'bob', 'WARNING: the peer calls itself BOB, your own nick: its messages may pass for yours'],
    ['bob', 'no key', 'bob', 'WARNING: the peer calls itself bob, your own nick: its messages may pass for yours'],
    ['bob', 'our own key', 'bob', null], // this very install, in another terminal
    [
      'b\u043eb',
      'another key',
      'bob',
      'WARNING: the peer calls itself b\u043eb (b\\u043eb), a look-alike of your own nick bob: its messages may pass for yours',
    ],
    ['mallory', 'another key', 'bob', null],
    ['dave', 'another key', 'bob', null],
  ])('%s with %s, talking to %s', (nick, key, own, expected) => {
    const warning = impostorWarning(book, nick, KEYS[key], { nick: own, fingerprint: OURS });
    expect(warning?.split('\n')[0] ?? null).toBe(expected);
  });

  it('names the keys when the contact has one', () => {
    expect(impostorWarning(book, '\u0430lice', OTHER, { nick: 'bob', fingerprint: OURS })).toBe(
      `WARNING: the peer calls itself \u0430lice (\\u0430lice), a look-alike of contact alice: it may not be alice\n  expected  ${ALICE}\n            ${shortFingerprint(ALICE)}\n  presented ${OTHER}\n            ${shortFingerprint(OTHER)}`,
    );
  });

  it('a connector is not warned about the contact it dialled, only about the others', () => {
    expect(impostorWarning(book, '\u0441arol', OTHER, undefined, 'carol')).toBeNull();
    expect(impostorWarning(book, '\u0430lice', OTHER, undefined, 'carol')).toMatch(/a look-alike of contact alice/);
  });
});

describe('KeyBookReader (a listener reads the pins for every TLS connection)', () => {
  const KEY = `DD${':DD'.repeat(31)}`;
  /** A config directory with a known-peers file last changed a minute ago (settled). */
  const settledHome = (): NodeJS.ProcessEnv => {
    const env = { LANCHAT_HOME: mkdtempSync(join(tmpdir(), 'lanchat-keys-')) };
    const peers = storePath(env, 'known-peers.json');
    writeFileSync(peers, JSON.stringify({ version: 1, peers: { '10.0.0.9:5000': KEY } }), { mode: 0o600 });
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(peers, minuteAgo, minuteAgo);
    utimesSync(join(peers, '..'), minuteAgo, minuteAgo);
    return env;
  };

  it('reads the files again only when they changed', async () => {
    const env = settledHome();
    const keys = new KeyBookReader(env);
    const first = await keys.load();
    expect(first.peers).toEqual({ '10.0.0.9:5000': KEY });
    expect(await keys.load()).toBe(first); // unchanged: not read again
    await saveContact(storePath(env, CONTACTS_FILE), { name: 'dave', host: '10.0.0.9', port: 5000, fingerprint: KEY });
    const second = await keys.load();
    expect(second.contacts.map((contact) => contact.name)).toEqual(['dave']);
  });

  it('reads again a file changed just before it was read, even when nothing about it seems to change after', async () => {
    const env = settledHome();
    const peers = storePath(env, 'known-peers.json');
    writeFileSync(peers, JSON.stringify({ version: 1, peers: { '10.0.0.9:5001': KEY } }));
    const keys = new KeyBookReader(env);
    const first = await keys.load();
    expect(Object.keys(first.peers)).toEqual(['10.0.0.9:5001']);
    // The same size, within the clock's tick: its times may not move. Read again all the same.
    writeFileSync(peers, JSON.stringify({ version: 1, peers: { '10.0.0.9:5002': KEY } }));
    expect(Object.keys((await keys.load()).peers)).toEqual(['10.0.0.9:5002']);
  });

  it('still refuses a file that others may write, once it became so', async () => {
    const env = settledHome();
    const keys = new KeyBookReader(env);
    await keys.load();
    chmodSync(storePath(env, 'known-peers.json'), 0o666);
    await expect(keys.load()).rejects.toMatchObject({ code: 'ERR_STORE_UNSAFE' });
  });
});
