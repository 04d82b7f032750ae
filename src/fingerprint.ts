// Fingerprints (SHA-256 of a certificate, `AB:CD:…`): pure helpers, cheap to load.

/** Eight groups of five digits from a fingerprint's 32 bytes: short enough to read aloud and compare. */
function digitGroups(fingerprint: string): string[] {
  const bytes = Buffer.from(fingerprint.replace(/:/g, ''), 'hex');
  const groups: string[] = [];
  for (let i = 0; i + 4 <= bytes.length; i += 4) groups.push(String(bytes.readUInt32BE(i) % 100_000).padStart(5, '0'));
  return groups;
}

/** A fingerprint to read aloud and compare, on two lines (as `lanchat id` prints it). */
export function spokenFingerprint(fingerprint: string): string {
  const groups = digitGroups(fingerprint);
  return `${groups.slice(0, 4).join(' ')}\n${groups.slice(4).join(' ')}`;
}

/** The same digit groups on one line: the short form of a key that a session shows (`lanchat id` has it too). */
export function shortFingerprint(fingerprint: string): string {
  return digitGroups(fingerprint).join(' ');
}

const CANONICAL = /^(?:[0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/** Accepts `AB:CD:…`, lower case, or the 64 hex digits bare; returns the canonical form, or null. */
export function normalizeFingerprint(text: string): string | null {
  if (CANONICAL.test(text)) return text; // as every key book holds them: one test per pin read
  const hex = text
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return null;
  return hex.match(/../g)!.join(':');
}
