import { nodeIdSchema, peerAddressSchema } from './cluster';

/** One entry of `DMQ_PEERS`. */
export interface PeerSpec {
  readonly id: number;
  /** `host:port`, exactly as given. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
}

/** Raised for a malformed `DMQ_PEERS` string; the message says which entry and why. */
export class PeerListError extends Error {
  readonly code = 'config/invalid-peers';
  constructor(message: string) {
    super(message);
    this.name = 'PeerListError';
  }
}

/**
 * Parses `DMQ_PEERS`: `id=host:port` comma-separated, e.g.
 * `1=127.0.0.1:9091,2=127.0.0.1:9092,3=127.0.0.1:9093`. Ids must be distinct positive
 * integers; the result is sorted by id.
 */
export function parsePeers(text: string): PeerSpec[] {
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (entries.length === 0) throw new PeerListError('DMQ_PEERS is empty: expected id=host:port,…');
  const peers: PeerSpec[] = [];
  const seen = new Set<number>();
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new PeerListError(`"${entry}": expected id=host:port`);
    const idText = entry.slice(0, eq).trim();
    const address = entry.slice(eq + 1).trim();
    const id = nodeIdSchema.safeParse(/^\d+$/.test(idText) ? Number(idText) : NaN);
    if (!id.success) throw new PeerListError(`"${entry}": id must be a positive integer`);
    if (!peerAddressSchema.safeParse(address).success) {
      throw new PeerListError(`"${entry}": address must be host:port with a port in 1..65535`);
    }
    if (seen.has(id.data)) throw new PeerListError(`"${entry}": node id ${id.data} appears twice`);
    seen.add(id.data);
    const colon = address.lastIndexOf(':');
    const rawHost = address.slice(0, colon);
    const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
    peers.push({ id: id.data, address, host, port: Number(address.slice(colon + 1)) });
  }
  return peers.sort((a, b) => a.id - b.id);
}

/** Formats peers back into the `DMQ_PEERS` syntax. */
export function formatPeers(peers: readonly PeerSpec[]): string {
  return peers.map((p) => `${p.id}=${p.address}`).join(',');
}
