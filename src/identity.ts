// This install's identity for secure sessions: an ECDSA P-256 key and a
// self-signed certificate (SHA-256), made on first use by `selfsigned`, kept in
// one file (identity.pem, mode 0600) beside the contacts. No crypto of our own:
// node:crypto reads and fingerprints it.
import { X509Certificate, createPrivateKey, randomUUID } from 'node:crypto';
import { link, stat, unlink, writeFile } from 'node:fs/promises';
import { platform } from 'node:os';
import { LanchatError } from './errors.js';
import { fsProblem, makeStoreDir, readText, storePath } from './store.js';

export const IDENTITY_FILE = 'identity.pem';

export interface Identity {
  /** PEM: the private key. */
  key: string;
  /** PEM: the self-signed certificate. */
  cert: string;
  /** SHA-256 of the certificate (DER), as `AB:CD:…` — the form `--fingerprint` takes. */
  fingerprint: string;
}

const KEY_BLOCK = /-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----\r?\n?/;
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\r?\n?/;

function parseIdentity(text: string, path: string): Identity {
  const key = KEY_BLOCK.exec(text)?.[0];
  const cert = CERT_BLOCK.exec(text)?.[0];
  try {
    if (!key || !cert) throw new Error('no private key and certificate in it');
    createPrivateKey(key);
    return { key, cert, fingerprint: new X509Certificate(cert).fingerprint256 };
  } catch (error) {
    throw new LanchatError(
      'ERR_IDENTITY_CORRUPT',
      `${path}: ${(error as Error).message}; remove it to make a new identity (peers that pinned the old one will then refuse you)`,
    );
  }
}

/** Like ssh with an unprotected key: a private key others can read is not used (POSIX modes only). */
async function checkPrivate(path: string): Promise<void> {
  if (platform() === 'win32') return;
  const mode = (await stat(path)).mode & 0o777;
  if (mode & 0o077) {
    throw new LanchatError(
      'ERR_IDENTITY_EXPOSED',
      `${path} can be read by others (mode ${mode.toString(8).padStart(4, '0')}); the key in it must be private: chmod 600 ${path}`,
    );
  }
}

/**
 * This install's identity, made on first use. Safe when several lanchat
 * processes start at once on an empty config directory: each writes its own
 * candidate to a temporary file and tries to link it into place; link() fails
 * if the file exists, so the first writer wins and everyone reads the winner.
 */
export async function loadIdentity(env: NodeJS.ProcessEnv): Promise<Identity> {
  const path = storePath(env, IDENTITY_FILE);
  const existing = await readText(path);
  if (existing !== null) {
    await checkPrivate(path);
    return parseIdentity(existing, path);
  }
  const { default: selfsigned } = await import('selfsigned');
  // A key pins an install, not a period: the certificate does not expire in practice.
  const made = await selfsigned.generate([{ name: 'commonName', value: 'lanchat' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.UTC(2126, 0, 1)),
  });
  const dir = await makeStoreDir(path);
  const candidate = `${path}.${randomUUID()}.tmp`;
  try {
    await writeFile(candidate, `${made.private}${made.cert}`, { mode: 0o600, flag: 'wx' });
    await link(candidate, path);
  } catch (error) {
    // EEXIST: another process was first; its identity is the one.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new LanchatError('ERR_IDENTITY', `cannot create this install's key in ${dir}: ${fsProblem(error)}`);
    }
  } finally {
    await unlink(candidate).catch(() => {}); // even half written (a full disk): no leftovers
  }
  return parseIdentity((await readText(path)) ?? '', path);
}
