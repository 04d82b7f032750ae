// Connecting as a new user would (issue 17): HOST:PORT as one argument, usage
// errors for hosts that cannot be one, what a terminal sees while connecting,
// and a TLS connect answered by something that is not lanchat.
import { afterEach, describe, expect, it } from 'vitest';
import { fileInput, killAll, lanchat, listener } from './cli-helpers.js';

afterEach(killAll);

describe('connect HOST:PORT', () => {
  it('takes HOST:PORT as one argument', async () => {
    const listen = await listener([], { stdin: 'ignore' });
    const connect = lanchat(['connect', `127.0.0.1:${listen.port}`], { stdin: fileInput('joined\n') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('joined\n');
  });

  it('takes [v6]:PORT as one argument', async () => {
    const listen = lanchat(['listen', '0', '--host', '::1'], { stdin: 'ignore' });
    const [, port] = await listen.waitForStderr(/^listening on \[::1\]:(\d+)$/m);
    const connect = lanchat(['connect', `[::1]:${port}`], { stdin: fileInput('v6 joined\n') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('v6 joined\n');
  });

  it.each([
    [['127.0.0.1'], /^lanchat: no port given for 127\.0\.0\.1: write HOST PORT or HOST:PORT/],
    [['::1'], /^lanchat: no port given for ::1: write HOST PORT or HOST:PORT \(\[v6\]:PORT for IPv6\)/],
    [['127.0.0.1:70000'], /^lanchat: invalid port '70000' in "127\.0\.0\.1:70000": a port is a whole number from 1 to 65535/],
    [['127.0.0.1:5000', '5000'], /^lanchat: invalid host "127\.0\.0\.1:5000": .*\(HOST PORT, or HOST:PORT alone\)/],
    [['bad host!', '5000'], /^lanchat: invalid host "bad host!": give an IPv4 or IPv6 address or a host name\n/],
    [['bad host!:5000'], /^lanchat: invalid address "bad host!:5000": write HOST PORT or HOST:PORT/],
  ])('connect %j is a usage error (exit 2) that says how to write it', async (args, message) => {
    const proc = lanchat(['connect', ...args], { stdin: 'ignore' });
    expect((await proc.exited).code).toBe(2);
    expect(proc.stderr()).toMatch(message);
  });
});
