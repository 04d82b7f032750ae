// The platform's ceiling, for context in the benchmark: a bare Node TCP pipe
// with no protocol at all. `send PORT` pipes stdin to 127.0.0.1:PORT;
// `receive` listens on an ephemeral port (printed on stderr) and pipes one
// connection to stdout.
import { createReadStream } from 'node:fs';
import { connect, createServer } from 'node:net';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';

const [mode, port] = process.argv.slice(2);
if (mode === 'send') {
  const socket = connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  await pipeline(createReadStream('', { fd: 0, highWaterMark: 256 * 1024 }), socket);
} else {
  const server = createServer(async (socket) => {
    server.close();
    await pipeline(socket, process.stdout);
  });
  server.listen(0, '127.0.0.1', () => process.stderr.write(`listening on 127.0.0.1:${server.address().port}\n`));
}
