import type { PeerSpec } from '@dmq/api-contracts';
import type { PeerDirectory } from './metadata-node';

/**
 * Addresses of the other nodes: this node's own `DMQ_PEERS` entries (the only source the
 * contract allows), plus members added at run time through `POST /cluster/members` on this
 * node. Last contact comes from the transport's delivery statistics.
 */
export class StaticPeerDirectory implements PeerDirectory {
  private readonly addresses = new Map<number, string>();

  constructor(
    peers: readonly PeerSpec[],
    private readonly lastContactAt: (nodeId: number) => number | undefined,
    private readonly now: () => number = Date.now,
  ) {
    for (const peer of peers) this.addresses.set(peer.id, peer.address);
  }

  addressOf(nodeId: number): string | undefined {
    return this.addresses.get(nodeId);
  }

  remember(nodeId: number, address: string): void {
    if (!this.addresses.has(nodeId)) this.addresses.set(nodeId, address);
  }

  lastContactMs(nodeId: number): number | null {
    const at = this.lastContactAt(nodeId);
    return at === undefined ? null : Math.max(0, Math.round(this.now() - at));
  }
}
