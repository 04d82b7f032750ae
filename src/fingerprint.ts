// Fingerprints (SHA-256 of a certificate, `AB:CD:…`): pure helpers, cheap to load.

/** A fingerprint to read aloud and compare: eight groups of five digits from its 32 bytes. */
export function spokenFingerprint(fingerprint: string): string {
  const bytes = Buffer.from(fingerprint.replace(/:/g, ''), 'hex');
  const groups: string[] = [];
  for (let i = 0; i + 4 <= bytes.length; i += 4) groups.push(String(bytes.readUInt32BE(i) % 100_000).padStart(5, '0'));
  return `${groups.slice(0, 4).join(' ')}\n${groups.slice(4).join(' ')}`;
}

/** Accepts `AB:CD:…`, lower case, or the 64 hex digits bare; returns the canonical form, or null. */
export function normalizeFingerprint(text: string): string | null {
  const hex = text
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return null;
  return hex.match(/../g)!.join(':');
}
