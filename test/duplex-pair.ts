import { Duplex } from 'node:stream';

/**
 * Two connected in-memory streams: what one writes, the other reads (a socket
 * pair without a port). Destroying one side resets the other, as TCP would.
 */
export function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk, _encoding, callback) {
        peer().push(chunk);
        callback();
      },
      final(callback) {
        peer().push(null);
        callback();
      },
      destroy(error, callback) {
        const other = peer();
        if (!other.destroyed && !other.readableEnded) other.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
        callback(error);
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}
