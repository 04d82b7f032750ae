// What every bench needs of loopback: a free port, and waiting for a peer that cannot say when it listens.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export const HOST = '127.0.0.1';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function freePort() {
  const server = createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Waits until something listens on 127.0.0.1:port (for peers that cannot report it: nc, ncat). */
export async function waitListening(port, ms = 5000) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const table = readFileSync('/proc/net/tcp', 'utf8');
    if (table.split('\n').some((row) => row.includes(`:${hex} `) && / 0A /.test(row))) return;
    await sleep(10);
  }
  throw new Error(`nothing listens on port ${port}`);
}
