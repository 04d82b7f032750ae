import { describe, expect, it } from 'vitest';
import { formatBytes } from '../src/files.js';
import { parseSize } from '../src/options.js';
import { parseInput, splitWords } from '../src/slash.js';

describe('file commands', () => {
  it.each([
    ['/send a.txt', { command: 'send', paths: ['a.txt'] }],
    ['/send a.txt "my report.pdf" b\\ c', { command: 'send', paths: ['a.txt', 'my report.pdf', 'b c'] }],
    ["/send 'it''s'", { command: 'send', paths: ['its'] }],
    ['/send', { command: 'invalid', hint: 'usage: /send PATH...' }],
    ['/send "open', { command: 'invalid', hint: 'usage: /send PATH...' }],
    ['/accept', { command: 'accept', dir: null }],
    ['/accept ~/in', { command: 'accept', dir: '~/in' }],
    ['/accept "my dir"', { command: 'accept', dir: 'my dir' }],
    ['/accept a b', { command: 'invalid', hint: 'usage: /accept [DIR]' }],
    ['/decline', { command: 'decline' }],
    ['/decline now', { command: 'invalid', hint: 'usage: /decline' }],
    ['/cancel', { command: 'cancel' }],
  ])('%s', (line, input) => {
    expect(parseInput(line)).toEqual(input);
  });

  it('splits words as a shell does, quotes and escapes kept apart', () => {
    expect(splitWords('  a  "b c"  \'d"e\' f\\ g ""')).toEqual(['a', 'b c', 'd"e', 'f g', '']);
    expect(splitWords('"unfinished')).toBeNull();
  });
});

describe('sizes', () => {
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1000, '1.0 kB'],
    [2_300_000, '2.3 MB'],
    [50_000_000, '50 MB'],
    [999_960_000, '1.0 GB'],
    [1_073_741_824, '1.1 GB'],
  ])('%i bytes are shown as %s', (bytes, shown) => {
    expect(formatBytes(bytes)).toBe(shown);
  });

  it.each([
    ['500', 500],
    ['100M', 100_000_000],
    ['1.5GB', 1_500_000_000],
    ['2GiB', 2 * 1024 ** 3],
    ['64kib', 65_536],
    [' 7 k ', 7000],
  ])('--max-file-size %s is %i bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', '0', '-5', 'ten', '5X', '1e9', '1.2.3M'])('--max-file-size %j is refused', (text) => {
    expect(() => parseSize(text)).toThrow('a size is a number of bytes');
  });
});
