import { describe, expect, it } from 'vitest';
import { SLASH_HELP, completeInput, parseInput, refusal, slashHelp, type Place } from '../src/slash.js';

describe('parseInput', () => {
  it.each([
    ['hello', { command: 'say', text: 'hello' }],
    ['', { command: 'say', text: '' }],
    ['//etc/passwd', { command: 'say', text: '/etc/passwd' }],
    ['/nick carol', { command: 'nick', nick: 'carol' }],
    ['/nick', { command: 'nick', nick: null }],
    ['/NICK  carol ', { command: 'nick', nick: 'carol' }],
    ['/me waves at you', { command: 'me', text: 'waves at you' }],
    ['/save', { command: 'save', file: null }],
    ['/save chat.txt', { command: 'save', file: 'chat.txt' }],
    ['/who', { command: 'who' }],
    ['/contact bob', { command: 'contact', name: 'bob', port: null }],
    ['/contact bob 5000', { command: 'contact', name: 'bob', port: 5000 }],
    ['/help', { command: 'help' }],
    ['/quit', { command: 'quit' }],
    ['/who carol', { command: 'who', nick: 'carol' }],
    ['/names', { command: 'names' }],
    ['/msg carol hi there  ', { command: 'msg', nick: 'carol', text: 'hi there' }],
    ['/MSG  carol   /not a command', { command: 'msg', nick: 'carol', text: '/not a command' }],
    ['/kick carol', { command: 'kick', nick: 'carol', reason: null }],
    ['/kick carol too loud', { command: 'kick', nick: 'carol', reason: 'too loud' }],
  ])('%j', (line, expected) => {
    expect(parseInput(line)).toEqual(expected);
  });

  it.each([
    ['/me'],
    ['/frobnicate now'],
    ['/'],
    ['/contact'],
    ['/contact bob port'],
    ['/contact bob 1 2'],
    ['/msg'],
    ['/msg carol'],
    ['/kick'],
    ['/who carol dave'],
  ])('%j gives a hint and sends nothing', (line) => {
    expect(parseInput(line)).toMatchObject({ command: 'invalid', hint: expect.any(String) });
  });
});

describe('commands per place', () => {
  it('/help in a 1:1 chat lists the 1:1 commands only, in one column', () => {
    expect(slashHelp('direct')).toBe(SLASH_HELP);
    expect(SLASH_HELP).toBe(
      [
        'commands:',
        '  /nick [NAME]          change your nick (the peer sees it); alone: say what it is',
        '  /me ACTION            send an action, shown as "* nick ACTION"',
        '  /save [FILE]          save the conversation so far to a text file',
        '  /who                  who you are talking to, and since when',
        '  /contact NAME [PORT]  save this peer as a contact; a listener adds the port the peer listens on',
        '  /send PATH...         offer files to the peer ("quote" paths with spaces)',
        '  /accept [DIR]         take the files offered, into DIR (default: the current directory)',
        '  /decline              refuse the files offered',
        '  /cancel               stop the files on their way, both ways (sending them again resumes)',
        '  /help                 this list',
        '  /quit                 say goodbye and leave (also Ctrl-D)',
        '  //text                send a line that starts with "/"',
      ].join('\n'),
    );
    for (const line of SLASH_HELP.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });

  it.each([
    [
      'member',
      [
        '/nick',
        '/me',
        '/msg',
        '/names',
        '/save',
        '/who',
        '/contact',
        '/send',
        '/accept',
        '/decline',
        '/cancel',
        '/help',
        '/quit',
        '//text',
      ],
    ],
    [
      'host',
      ['/nick', '/me', '/msg', '/names', '/save', '/who', '/kick', '/send', '/accept', '/decline', '/cancel', '/help', '/quit', '//text'],
    ],
  ] as const)('/help for a %s lists what applies there, in one column', (place, commands) => {
    const lines = slashHelp(place).split('\n').slice(1);
    expect(lines.map((line) => line.trim().split(/\s/)[0])).toEqual(commands);
    expect(new Set(lines.map((line) => /^ {2}\S.*?\s{2,}(?=\S)/.exec(line)![0].length)).size).toBe(1);
  });

  it.each<[string, Place, string | null]>([
    ['/names', 'direct', '/names works in a room'],
    ['/names', 'member', null],
    ['/names', 'host', null],
    ['/msg carol hi', 'direct', '/msg works in a room'],
    ['/msg carol hi', 'member', null],
    ['/kick carol', 'direct', '/kick works in a room you host'],
    ['/kick carol', 'member', "only the room's host can kick"],
    ['/kick carol', 'host', null],
    ['/who', 'direct', null],
    ['/who carol', 'direct', '/who NICK works in a room (/who alone says who you talk to)'],
    ['/who carol', 'member', null],
    ['/contact bob', 'member', null],
    ['/contact bob 5000', 'host', '/contact works with one peer: at the host, members are not contacts yet'],
    ['/nick x', 'member', null],
    ['/send bob report.pdf', 'member', null],
    ['/send bob report.pdf', 'host', null],
    ['/accept', 'member', null],
    ['/cancel', 'host', null],
    ['hello', 'host', null],
    ['/frobnicate', 'member', null],
  ])('%j at a %s: %j', (line, place, said) => {
    expect(refusal(parseInput(line), place)).toBe(said);
  });
});

describe('Tab completion', () => {
  it.each<[string, Place, string[], [string[], string]]>([
    ['/wh', 'direct', [], [['/who'], '/wh']],
    ['/N', 'member', [], [['/nick', '/names'], '/N']],
    ['/na', 'direct', [], [[], '/na']],
    ['/k', 'host', [], [['/kick'], '/k']],
    ['hi bo', 'direct', ['bobby'], [['bobby'], 'bo']],
    ['/msg ca', 'member', ['alice', 'carol', 'Cat'], [['carol', 'Cat'], 'ca']],
    ['hi ', 'direct', ['bobby'], [[], '']],
    ['//wh', 'direct', ['bobby'], [[], '//wh']],
  ])('%j at a %s among %j', (line, place, nicks, expected) => {
    expect(completeInput(line, place, nicks)).toEqual(expected);
  });
});
