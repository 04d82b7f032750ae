import { describe, expect, it } from 'vitest';
import { parseInput } from '../src/slash.js';

describe('parseInput', () => {
  it.each([
    ['hello', { command: 'say', text: 'hello' }],
    ['', { command: 'say', text: '' }],
    ['//etc/passwd', { command: 'say', text: '/etc/passwd' }],
    ['/nick carol', { command: 'nick', nick: 'carol' }],
    ['/NICK  carol ', { command: 'nick', nick: 'carol' }],
    ['/me waves at you', { command: 'me', text: 'waves at you' }],
    ['/save', { command: 'save', file: null }],
    ['/save chat.txt', { command: 'save', file: 'chat.txt' }],
    ['/who', { command: 'who' }],
    ['/contact bob', { command: 'contact', name: 'bob', port: null }],
    ['/contact bob 5000', { command: 'contact', name: 'bob', port: 5000 }],
    ['/help', { command: 'help' }],
    ['/quit', { command: 'quit' }],
  ])('%j', (line, expected) => {
    expect(parseInput(line)).toEqual(expected);
  });

  it.each([['/nick'], ['/me'], ['/frobnicate now'], ['/'], ['/contact'], ['/contact bob port'], ['/contact bob 1 2']])(
    '%j gives a hint and sends nothing',
    (line) => {
      expect(parseInput(line)).toMatchObject({ command: 'invalid', hint: expect.any(String) });
    },
  );
});
