// Discovery's pure parts: the TXT record lanchat announces and reads back, and
// which listeners answer to a name. The network side is in discovery-netns.test.ts.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nearbyRow } from '../src/commands/discover.js';
import { decodeTxt, encodeTxt, instanceName, matchNearby, type Announcement, type Nearby } from '../src/discovery.js';
import { killAll, lanchat } from './cli-helpers.js';

const KEY = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';
const HEX = KEY.replace(/:/g, '');

describe('TXT records', () => {
  it.each<[string, Announcement, string[]]>([
    ['a listener', { nick: 'alice', fingerprint: KEY, version: 1 }, ['v=1', 'nick=alice', `fp=${HEX}`]],
    [
      'a room with its size',
      { nick: 'bob', fingerprint: KEY, version: 1, room: { name: 'dev-room', size: 4 } },
      ['v=1', 'nick=bob', `fp=${HEX}`, 'room=dev-room', 'size=4'],
    ],
    ['a nick beyond ASCII', { nick: 'zoë東京', fingerprint: KEY, version: 2 }, ['v=2', 'nick=zoë東京', `fp=${HEX}`]],
  ])('%s: encodes to key=value strings and decodes back', (_name, announcement, txt) => {
    expect(encodeTxt(announcement)).toEqual(txt);
    expect(decodeTxt(txt.map((entry) => Buffer.from(entry)))).toEqual(announcement);
  });

  it.each<[string, string[]]>([
    ['no nick', ['v=1', `fp=${HEX}`]],
    ['no key', ['v=1', 'nick=alice']],
    ['a key that is not 32 bytes', ['v=1', 'nick=alice', 'fp=ABCD']],
    ['a nick with a space', ['v=1', 'nick=al ice', `fp=${HEX}`]],
    ['a nick with a control character', ['v=1', 'nick=al\u001bice', `fp=${HEX}`]],
    ['a nick of 33 characters', ['v=1', `nick=${'a'.repeat(33)}`, `fp=${HEX}`]],
    ['no version', ['nick=alice', `fp=${HEX}`]],
    ['version 0', ['v=0', 'nick=alice', `fp=${HEX}`]],
    ['a version that is not a number', ['v=one', 'nick=alice', `fp=${HEX}`]],
    ['nothing', []],
  ])('%s: not a lanchat announcement (null)', (_name, txt) => {
    expect(decodeTxt(txt)).toBeNull();
  });

  it('the first of a repeated key wins, keys ignore case, unknown keys and bare words are ignored (RFC 6763 §6.4)', () => {
    expect(decodeTxt(['NICK=alice', 'nick=mallory', 'V=1', `Fp=${KEY}`, 'colour=blue', 'flag', '=x'])).toEqual({
      nick: 'alice',
      fingerprint: KEY,
      version: 1,
    });
  });

  it('a room with a bad name or size: the room is dropped, or its size', () => {
    expect(decodeTxt(['v=1', 'nick=a', `fp=${HEX}`, 'room=two words', 'size=3'])).toEqual({ nick: 'a', fingerprint: KEY, version: 1 });
    expect(decodeTxt(['v=1', 'nick=a', `fp=${HEX}`, 'room=dev', 'size=-3'])).toEqual({
      nick: 'a',
      fingerprint: KEY,
      version: 1,
      room: { name: 'dev' },
    });
  });

  it('the instance name is at most 63 bytes, has no dots, and differs by port', () => {
    const long = instanceName({ nick: '東京'.repeat(16), fingerprint: KEY, version: 1 }, 5000);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(63);
    expect(long).toMatch(/ \(lanchat 5000 ABCDEF01\)$/);
    expect(instanceName({ nick: 'a.b', fingerprint: KEY, version: 1 }, 1)).toBe('a-b (lanchat 1 ABCDEF01)');
    expect(instanceName({ nick: 'a', fingerprint: KEY, version: 1 }, 1)).not.toBe(
      instanceName({ nick: 'a', fingerprint: KEY, version: 1 }, 2),
    );
  });
});

describe('who answers to a name', () => {
  const near = (nick: string, room?: string): Nearby => ({
    nick,
    fingerprint: KEY,
    version: 1,
    instance: nick,
    host: '10.0.0.1',
    port: 5000,
    ...(room && { room: { name: room } }),
  });
  const found = [near('alice'), near('Bob'), near('carol', 'dev-room'), near('ALICE')];

  it.each<[string, string, string[]]>([
    ['a nick, ignoring case', 'bob', ['Bob']],
    ['a room by its name', 'dev-room', ['carol']],
    ['a room host by its nick', 'carol', ['carol']],
    ['several listeners with one nick', 'alice', ['alice', 'ALICE']],
    ['nobody', 'dave', []],
    ['not a prefix', 'ali', []],
  ])('%s', (_name, name, nicks) => {
    expect(matchNearby(found, name).map((n) => n.nick)).toEqual(nicks);
  });
});

describe("discover's table", () => {
  const book = { contacts: [{ name: 'al', host: '10.0.0.1', port: 5000, fingerprint: KEY }], peers: {} };
  const alice: Nearby = { nick: 'alice', fingerprint: KEY, version: 1, instance: 'alice', host: '10.0.0.1', port: 5000 };

  it.each<[string, Nearby, string]>([
    ['a contact', alice, 'alice         10.0.0.1         5000   contact al'],
    ['a new key', { ...alice, fingerprint: KEY.replace('AB', '00') }, 'alice         10.0.0.1         5000   a new key'],
    [
      'a room',
      { ...alice, fingerprint: KEY.replace('AB', '00'), room: { name: 'dev', size: 4 } },
      'alice         10.0.0.1         5000   a new key             (room dev, 4 people)',
    ],
    [
      'a room of one',
      { ...alice, room: { name: 'dev', size: 1 } },
      'alice         10.0.0.1         5000   contact al            (room dev, 1 person)',
    ],
  ])('%s', (_name, nearby, row) => {
    expect(nearbyRow(book, nearby)).toBe(row);
  });
});

describe('LANCHAT_MDNS=off (as every other test runs): no multicast DNS at all', () => {
  afterEach(killAll);
  const run = async (args: string[], home: string): Promise<{ code: number | null; err: string }> => {
    const proc = lanchat(args, { env: { LANCHAT_HOME: home, LANCHAT_MDNS: 'off' }, stdin: 'ignore' });
    return { code: (await proc.exited).code, err: proc.stderr() };
  };

  it('discover and listen --announce are refused; chat NAME looks at the contacts only; config announce is kept', async () => {
    const home = mkdtempSync(join(tmpdir(), 'lanchat-mdns-off-'));
    expect(await run(['discover'], home)).toEqual({
      code: 1,
      err: 'lanchat: cannot look for people nearby: multicast DNS is off here (LANCHAT_MDNS=off)\n',
    });
    expect(await run(['listen', '0', '--host', '127.0.0.1', '--announce'], home)).toEqual({
      code: 1,
      err: 'lanchat: cannot announce this listener: multicast DNS is off here (LANCHAT_MDNS=off)\n',
    });
    expect(await run(['chat', 'alice'], home)).toEqual({
      code: 1,
      err: 'lanchat: no contact named "alice" (lanchat contacts list shows them all)\n',
    });
    expect(await run(['config', 'announce', 'on'], home)).toEqual({
      code: 0,
      err: 'listeners are now announced on the local network (lanchat listen --no-announce for one that is not)\n',
    });
    const shown = lanchat(['config', 'announce'], { env: { LANCHAT_HOME: home }, stdin: 'ignore' });
    expect((await shown.exited).code).toBe(0);
    expect(shown.stdout().toString()).toBe('on\n');
  }, 30_000);
});
