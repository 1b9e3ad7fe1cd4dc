/**
 * Deterministic topic ids. Every node must derive the same id for the same CreateTopic entry,
 * so the id cannot be random: it is built from the Raft index of the entry (unique per topic
 * creation) and a hash of the name and a salt (which `RestoreFromBackup` changes, so that ids
 * created after a disaster recovery differ from the restored ones even though the new log's
 * indexes start over). The text is an RFC 4122 version-4-shaped UUID (version nibble 4,
 * variant bits 10), as the contract's `z.uuid()` requires.
 *
 * Layout: `iiiiiiii-iiii-4hhh-Vhhh-hhhhhhhhhhhh`, where `i` is the low 48 bits of the index
 * in hex, `h` hash bits and `V` one of 8, 9, a, b.
 */
export function deriveTopicId(index: number, name: string, salt: number): string {
  const indexHex = (index % 2 ** 48).toString(16).padStart(12, '0');
  const input = `${name}\u0000${salt}`;
  const a = hex32(fnv1a(input, 0x811c9dc5));
  const b = hex32(fnv1a(input, 0x01000193 ^ 0x5bd1e995));
  const c = hex32(fnv1a(input, 0xcbf29ce4));
  const variant = '89ab'[parseInt(a.charAt(7), 16) & 3] as string;
  return (
    `${indexHex.slice(0, 8)}-${indexHex.slice(8, 12)}-4${a.slice(0, 3)}-` +
    `${variant}${a.slice(3, 6)}-${b}${c.slice(0, 4)}`
  );
}

function fnv1a(text: string, seed: number): number {
  let hash = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  // Final avalanche (murmur3 fmix32) so that similar names differ in every nibble.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  hash ^= hash >>> 16;
  return hash >>> 0;
}

function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}
