import type { ResolvedNode } from './options';

/**
 * Chooses the node for the next attempt and learns from answers.
 *
 * Invariants: `cursor` indexes `nodes`; `leaderId` is the id named by the latest answer's
 * `X-DMQ-Leader` (undefined when that answer named none, or after the leader's address
 * failed at the socket level). The leader is preferred when its id maps to a configured
 * node; otherwise the client stays on the node at `cursor` while it works and moves the
 * cursor on when it fails (any node forwards writes and linearizable reads to the leader).
 *
 * `unreachable` holds the nodes whose last attempt failed at the socket level (refused,
 * reset, timed out) and that have not answered since: rotation skips them while another
 * node is left, and a `503` naming one of them as the leader is not followed — that answer
 * says the node could not use that leader either (typically: the leader was just killed and
 * the survivor has not noticed yet). Without this a failover would alternate between the
 * dead leader and a survivor, and every wasted attempt doubles the next backoff.
 */
export class NodeSelector {
  private cursor = 0;
  private leader: number | undefined;
  private readonly unreachable = new Set<ResolvedNode>();

  constructor(private readonly nodes: readonly ResolvedNode[]) {}

  /** The leader id last learned from an answer. */
  get leaderId(): number | undefined {
    return this.leader;
  }

  /** The node the next attempt should go to. */
  pick(): ResolvedNode {
    const leader = this.leaderNode();
    if (leader !== undefined) return leader;
    for (let i = 0; i < this.nodes.length; i += 1) {
      const node = this.nodes[(this.cursor + i) % this.nodes.length] as ResolvedNode;
      if (!this.unreachable.has(node)) return node;
    }
    return this.nodes[this.cursor] as ResolvedNode; // none answered lately: plain rotation
  }

  /**
   * Records an answer from `from` (any HTTP status): it is reachable, and it named
   * `leaderId`. A `503` (`unavailable`) naming a node that is unreachable from here does not
   * make it the leader; any other answer does (it was relayed through that leader, or the
   * leader itself answered) and clears its mark.
   */
  learnLeader(leaderId: number | undefined, from?: ResolvedNode, unavailable = false): void {
    if (from !== undefined) this.unreachable.delete(from);
    const named = leaderId === undefined ? undefined : this.nodes.find((n) => n.id === leaderId);
    if (named !== undefined && this.unreachable.has(named)) {
      if (unavailable) {
        this.leader = undefined;
        return;
      }
      this.unreachable.delete(named);
    }
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

  /** `node` failed at the socket level: {@link markFailed}, and avoid it until it answers. */
  markUnreachable(node: ResolvedNode): void {
    this.markFailed(node);
    this.unreachable.add(node);
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
