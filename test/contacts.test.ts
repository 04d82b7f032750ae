import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  addContact,
  isValidName,
  loadContacts,
  parseContacts,
  removeContact,
  renameContact,
  serializeContacts,
  suggestNames,
  updateContacts,
  validateContact,
  type Contact,
} from '../src/contacts.js';
import { normalizeHost } from '../src/address.js';

const bob: Contact = { name: 'bob', host: '10.0.0.4', port: 5000 };
const book: Contact[] = [bob, { name: 'alice', host: 'alice.lan', port: 6000 }];
const tmpFile = (): string => join(mkdtempSync(join(tmpdir(), 'lanchat-contacts-')), 'contacts.json');

describe('validation', () => {
  it.each([
    ['bob', true],
    ['Zoë', true],
    ['名前', true],
    ['नमस्ते', true],
    ['a.b_c-9', true],
    ['x'.repeat(32), true],
    ['x'.repeat(33), false],
    ['', false],
    ['two words', false],
    ['semi;colon', false],
    ['emoji😀', false],
  ])('name %j → %s', (name, valid) => {
    expect(isValidName(name)).toBe(valid);
  });

  it.each([
    ['10.0.0.4', '10.0.0.4'],
    ['::1', '::1'],
    ['[fe80::1]', 'fe80::1'],
    ['alice.lan', 'alice.lan'],
    ['host.', 'host'],
    ['-bad.lan', null],
    ['a..b', null],
    ['under_score', null],
    ['1.2.3.4.5:80', null],
    ['999.1.1.1', null],
    ['1.2.3', null],
    ['12345', null],
    ['host-1.lan2', 'host-1.lan2'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['', null],
  ])('host %j → %j', (host, normal) => {
    expect(normalizeHost(host)).toBe(normal);
  });

  it('a bad field is a usage error (exit 2) naming the field', () => {
    expect(() => validateContact('bad name', 'h', 1)).toThrow(
      expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/^invalid contact name/) }),
    );
    expect(() => validateContact('ok', 'bad host!', 1)).toThrow(
      expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/^invalid host/) }),
    );
    expect(() => validateContact('ok', 'h', 65536)).toThrow(
      expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/^invalid port/) }),
    );
    expect(() => validateContact('ok', 'h', 'abc')).toThrow('invalid port "abc"');
    expect(() => validateContact('ok', 'h', '99999999999999999999999')).toThrow('invalid port "99999999999999999999999"');
  });
});

describe('list operations', () => {
  it('names are unique ignoring case; --force replaces', () => {
    expect(() => addContact(book, { ...bob, name: 'BOB' })).toThrow(/exists already/);
    expect(addContact(book, { name: 'BOB', host: '::1', port: 1 }, true)).toEqual([book[1], { name: 'BOB', host: '::1', port: 1 }]);
  });

  it('rename refuses a clash but allows a change of case', () => {
    expect(() => renameContact(book, 'bob', 'Alice')).toThrow(/exists already/);
    expect(renameContact(book, 'bob', 'Bob')[0].name).toBe('Bob');
  });

  it('an unknown name suggests the closest ones', () => {
    expect(suggestNames(book, 'bbo')).toEqual(['bob']);
    expect(suggestNames(book, 'ali')).toEqual(['alice']);
    expect(suggestNames(book, 'zed')).toEqual([]);
    expect(() => removeContact(book, 'alcie')).toThrow('no contact named "alcie"; did you mean "alice"?');
  });
});

describe('contacts.json', () => {
  it('round-trips, sorted, versioned and human readable', () => {
    const text = serializeContacts(book);
    expect(text).toContain('"version": 1');
    expect(parseContacts(text, 'f')).toEqual([book[1], bob]);
  });

  it.each([
    ['{', /not valid JSON/],
    ['[]', /expected a JSON object/],
    ['{"version":2,"contacts":[]}', /newer lanchat/],
    ['{"contacts":[]}', /no valid "version"/],
    ['{"version":1,"contacts":{}}', /not a list/],
    ['{"version":1,"contacts":[{"name":"x","host":"h","port":"80"}]}', /contact 1 is not a valid/],
    ['{"version":1,"contacts":[{"name":"x","host":"h","port":1},{"name":"X","host":"h","port":1}]}', /appears twice/],
  ])('a corrupt file %j is an error naming the file', (text, problem) => {
    expect(() => parseContacts(text, '/home/u/contacts.json')).toThrow(
      expect.objectContaining({ code: 'ERR_CONTACTS_CORRUPT', exitCode: 1 }),
    );
    expect(() => parseContacts(text, '/home/u/contacts.json')).toThrow(/^\/home\/u\/contacts\.json: /);
    expect(() => parseContacts(text, 'f')).toThrow(problem);
  });

  it.each([
    ['{\n  "version": 1\n  "contacts": []\n}', /: not valid JSON at line 3, column 3: expected ',' or '}' after property value;/],
    ['{"version":1,"contacts":[', /: not valid JSON at line 1, column 26: unexpected end of JSON input;/],
    ['{\n\n  oops', /: not valid JSON at line 3, column 3: /],
    [
      '{"version":1,"contacts":[{"name":"x","host":"h","port":70000}]}',
      /contact 1 is not a valid \{name, host, port\}: "port" is 70000: a port is/,
    ],
    ['{"version":1,"contacts":[{"name":"x","host":"h","port":"80"}]}', /: "port" is "80": /],
    ['{"version":1,"contacts":[{"name":"x","port":1}]}', /: "host" is missing: give an IPv4/],
    ['{"version":1,"contacts":[{"name":"a b","host":"h","port":1}]}', /: "name" is "a b": use 1 to 32/],
    ['{"version":1,"contacts":[7]}', /contact 1 is not a valid \{name, host, port\}: it is not an object/],
  ])('a broken file %j says where (line and column) or which field, on one line', (text, problem) => {
    expect(() => parseContacts(text, 'f')).toThrow(problem);
    expect(() => parseContacts(text, 'f')).toThrow(/^[^\n]*$/);
  });

  it('a UTF-8 BOM (Windows Notepad) is skipped, and an empty file is an empty book', () => {
    expect(parseContacts('\uFEFF{"version":1,"contacts":[{"name":"a","host":"h","port":1}]}', 'f')).toEqual([
      { name: 'a', host: 'h', port: 1 },
    ]);
    expect(parseContacts('', 'f')).toEqual([]);
    expect(parseContacts(' \n', 'f')).toEqual([]);
    expect(parseContacts('\uFEFF', 'f')).toEqual([]);
  });

  it('hosts are kept in the form to dial, even when the file has brackets', () => {
    expect(parseContacts('{"version":1,"contacts":[{"name":"a","host":"[::1]","port":1}]}', 'f')).toEqual([
      { name: 'a', host: '::1', port: 1 },
    ]);
  });

  it('a missing file is an empty book', async () => {
    expect(await loadContacts(tmpFile())).toEqual([]);
  });

  it('an update never touches a file it cannot parse', async () => {
    const path = tmpFile();
    writeFileSync(path, '{"version":1,"contacts":[oops');
    await expect(updateContacts(path, (contacts) => ({ contacts: addContact(contacts, bob), result: null }))).rejects.toThrow(
      /not valid JSON/,
    );
    expect(readFileSync(path, 'utf8')).toBe('{"version":1,"contacts":[oops');
  });

  it('replaces the file atomically and leaves no temporary or lock files', async () => {
    const path = tmpFile();
    await updateContacts(path, (contacts) => ({ contacts: addContact(contacts, bob), result: null }));
    expect(await loadContacts(path)).toEqual([bob]);
    expect(readdirSync(join(path, '..'))).toEqual(['contacts.json']);
  });

  it('parallel updates under the lock lose nothing', async () => {
    const path = tmpFile();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        updateContacts(path, (contacts) => ({ contacts: addContact(contacts, { name: `c${i}`, host: 'h', port: i + 1 }), result: null })),
      ),
    );
    expect((await loadContacts(path)).length).toBe(20);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});
