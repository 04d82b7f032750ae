// Addresses, pure: one input, one expected output a line.
import { describe, expect, it } from 'vitest';
import { AllowList, formatAddress, isValidPort, normalizeHost, parseAddress, parsePort, plainHost, unbracket } from '../src/address.js';

describe('hosts in the form to dial', () => {
  it.each([
    ['10.0.0.4', '10.0.0.4'],
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['FE80::A', 'fe80::a'],
    ['fe80::1%eth0', 'fe80::1%eth0'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['[::ffff:10.0.0.1]', '10.0.0.1'],
    ['::ffff:a00:1', '::ffff:a00:1'],
    ['Alice.LAN', 'Alice.LAN'],
    ['host.', 'host'],
    ['x'.repeat(63), 'x'.repeat(63)],
    ['x'.repeat(64), null],
    ['-bad.lan', null],
    ['bad-.lan', null],
    ['a..b', null],
    ['under_score', null],
    ['999.1.1.1', null],
    ['12345', null],
    ['[alice.lan', null],
    ['', null],
    ['[]', null],
  ])('%j → %j', (host, dialled) => {
    expect(normalizeHost(host)).toBe(dialled);
  });

  it.each([
    ['[::1]', '::1'],
    ['[fe80::1%eth0]', 'fe80::1%eth0'],
    ['::1', '::1'],
    ['alice.lan', 'alice.lan'],
    ['[x', '[x'],
  ])('unbracket %j → %j', (host, bare) => {
    expect(unbracket(host)).toBe(bare);
  });

  it.each([
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::ffff:7f00:1', '::ffff:7f00:1'],
    ['::1', '::1'],
    ['10.0.0.4', '10.0.0.4'],
  ])('a socket address %j is shown as %j', (host, shown) => {
    expect(plainHost(host)).toBe(shown);
  });
});

describe('ports', () => {
  it.each([
    ['1', false, 1],
    ['65535', false, 65535],
    ['05000', false, 5000],
    ['0', false, null],
    ['0', true, 0],
    ['65536', false, null],
    ['65536', true, null],
    ['-1', true, null],
    ['1.5', false, null],
    ['1e3', false, null],
    [' 80', false, null],
    ['', false, null],
    ['99999999999999999999999', false, null],
  ] as const)('%j (listen: %j) → %j', (text, listen, port) => {
    expect(parsePort(text, { listen })).toBe(port);
  });

  it.each([
    [1, true],
    [65535, true],
    [0, false],
    [80.5, false],
    [Number.NaN, false],
  ])('port number %j is valid to dial: %j', (port, valid) => {
    expect(isValidPort(port)).toBe(valid);
  });
});

describe('addresses as shown and as typed back', () => {
  it.each([
    ['10.0.0.4', 5000, '10.0.0.4:5000'],
    ['::1', 5000, '[::1]:5000'],
    ['::ffff:10.0.0.4', 5000, '10.0.0.4:5000'],
    ['alice.lan', 1, 'alice.lan:1'],
  ])('%s port %d → %s', (host, port, shown) => {
    expect(formatAddress(host, port)).toBe(shown);
  });

  it.each([
    ['10.0.0.4:5000', { host: '10.0.0.4', port: 5000 }],
    ['[::1]:5000', { host: '::1', port: 5000 }],
    ['[0:0:0:0:0:0:0:1]:80', { host: '::1', port: 80 }],
    ['alice.lan.:22', { host: 'alice.lan', port: 22 }],
    ['::1:5000', null],
    ['10.0.0.4', null],
    ['10.0.0.4:0', null],
    ['10.0.0.4:65536', null],
    ['10.0.0.4:123456', null],
    ['bad_host:80', null],
    ['bob', null],
  ])('%j → %j', (text, endpoint) => {
    expect(parseAddress(text)).toEqual(endpoint);
  });

  it.each([
    ['10.0.0.4', 5000],
    ['::1', 1],
    ['alice.lan', 65535],
  ])('what %s:%d is shown as reads back as the same', (host, port) => {
    expect(parseAddress(formatAddress(host, port))).toEqual({ host, port });
  });
});

describe('who may connect (--allow)', () => {
  const allowed = new AllowList(['10.0.0.0/8', 'fd00::/8', '192.168.1.7']);

  it.each([
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['11.0.0.1', false],
    ['192.168.1.7', true],
    ['192.168.1.8', false],
    ['fd12::1', true],
    ['fe80::1', false],
  ])('%s allowed: %j', (host, allows) => {
    expect(allowed.allows(host)).toBe(allows);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', 'alice.lan', '10.0.0.0/8/1', '10.0.0.0/x', ''])('rule %j is a usage error naming it', (rule) => {
    expect(() => new AllowList([rule])).toThrow(
      expect.objectContaining({ code: 'ERR_USAGE', exitCode: 2, message: expect.stringContaining(`invalid --allow rule "${rule}"`) }),
    );
  });
});
