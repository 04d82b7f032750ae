// The platform's ceiling, for context in the benchmark: a bare Node TCP pipe
// with no protocol at all, optionally over TLS 1.3 with lanchat's identity
// (LANCHAT_HOME). `send PORT [tls]` pipes stdin to 127.0.0.1:PORT; `receive
// [tls]` listens on an ephemeral port (printed on stderr) and pipes one
// connection to stdout; `sessions` listens for TLS sessions (the client's
// certificate asked for, as lanchat does) and answers each one's first line
// with a line, then closes it: the floor of a Node TLS listener; `echo [tls]`
// listens and sends one connection's bytes back as they come: the floor of
// a Node peer's round trip.
import { createReadStream, fstatSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';

const [mode, ...rest] = process.argv.slice(2);
const secure = rest.includes('tls');
const options = async () => {
  const { loadIdentity } = await import('../dist/identity.js');
  const { key, cert } = await loadIdentity(process.env);
  return { key, cert, minVersion: 'TLSv1.3', rejectUnauthorized: false };
};
if (mode === 'send') {
  const port = Number(rest[0]);
  const socket = secure ? tls.connect({ port, host: '127.0.0.1', ...(await options()) }) : connect(port, '127.0.0.1');
  await once(socket, secure ? 'secureConnect' : 'connect');
  // A file in big reads (the throughput rows); a pipe as lines come (the chat-like row).
  const input = fstatSync(0).isFile() ? createReadStream('', { fd: 0, highWaterMark: 256 * 1024 }) : process.stdin;
  await pipeline(input, socket);
} else if (mode === 'sessions') {
  const server = tls.createServer({ ...(await options()), requestCert: true }, (socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end(`${socket.getPeerX509Certificate()?.fingerprint256}\n`));
  });
  server.listen(0, '127.0.0.1', () => process.stderr.write(`listening on 127.0.0.1:${server.address().port}\n`));
} else if (mode === 'echo') {
  const onPeer = (socket) => {
    server.close();
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.pipe(socket);
  };
  const server = secure ? tls.createServer(await options(), onPeer) : createServer(onPeer);
  server.listen(0, '127.0.0.1', () => process.stderr.write(`listening on 127.0.0.1:${server.address().port}\n`));
} else {
  const onPeer = async (socket) => {
    server.close();
    await pipeline(socket, process.stdout);
  };
  const server = secure ? tls.createServer(await options(), onPeer) : createServer(onPeer);
  server.listen(0, '127.0.0.1', () => process.stderr.write(`listening on 127.0.0.1:${server.address().port}\n`));
}
