import type { ResolvedNode } from './options';

/**
 * Chooses the node for the next attempt and learns from answers.
 *
 * Invariants: `cursor` indexes `nodes`; `leaderId` is the id named by the latest answer's
 * `X-DMQ-Leader` (undefined when that answer named none, or after the leader's address
 * failed at the socket level). The leader is preferred when its id maps to a configured
 * node; otherwise the client stays on the node at `cursor` while it works and moves the
 * cursor on when it fails (any node forwards writes and linearizable reads to the leader).
 */
export class NodeSelector {
  private cursor = 0;
  private leader: number | undefined;

  constructor(private readonly nodes: readonly ResolvedNode[]) {}

  /** The leader id last learned from an answer. */
  get leaderId(): number | undefined {
    return this.leader;
  }

  /** The node the next attempt should go to. */
  pick(): ResolvedNode {
    const leader = this.leaderNode();
    if (leader !== undefined) return leader;
    return this.nodes[this.cursor] as ResolvedNode;
  }

  /** Records what an answer from any node said about the leader. */
  learnLeader(leaderId: number | undefined): void {
    this.leader = leaderId;
  }

  /**
   * `node` failed (socket error, or answered that it cannot serve): forget it as leader if
   * it was, and move the cursor past it so the next attempt tries another node.
   */
  markFailed(node: ResolvedNode): void {
    if (node.id !== undefined && node.id === this.leader) this.leader = undefined;
    const index = this.nodes.indexOf(node);
    if (index >= 0) this.cursor = (index + 1) % this.nodes.length;
  }

  /** The configured node with the given id, or its address when given as a string. */
  find(node: number | string): ResolvedNode | undefined {
    if (typeof node === 'number') return this.nodes.find((n) => n.id === node);
    return this.nodes.find((n) => n.label === node || n.apiBase.host === node);
  }

  private leaderNode(): ResolvedNode | undefined {
    if (this.leader === undefined) return undefined;
    return this.nodes.find((n) => n.id === this.leader);
  }
}
