import type { Message } from '../core/messages';
import type { NodeId } from '../core/types';
import type { Transport } from './ports';

/**
 * An in-process network for tests and benchmarks: each node gets a {@link Transport};
 * messages are delivered asynchronously (on a microtask, so a sender's loop is never
 * re-entered) and can be dropped by cutting links or by a filter.
 */
export class MemoryNetwork {
  private readonly handlers = new Map<NodeId, (message: Message) => void>();
  private readonly cut = new Set<string>();
  /** Return false to drop a message (fault injection). */
  filter: ((message: Message) => boolean) | undefined;
  private inFlight = 0;
  /** Messages sent, for assertions. */
  sent = 0;

  transport(id: NodeId): Transport {
    return {
      send: (to, message) => this.send(id, to, message),
      onMessage: (handler) => {
        this.handlers.set(id, handler);
      },
    };
  }

  private send(from: NodeId, to: NodeId, message: Message): void {
    this.sent++;
    if (this.cut.has(`${from}-${to}`)) return;
    if (this.filter !== undefined && !this.filter(message)) return;
    this.inFlight++;
    queueMicrotask(() => {
      this.inFlight--;
      if (this.cut.has(`${from}-${to}`)) return;
      this.handlers.get(to)?.(message);
    });
  }

  /** Whether messages are still queued for delivery. */
  busy(): boolean {
    return this.inFlight > 0;
  }

  /** Cuts both directions between `id` and every other node. */
  isolate(id: NodeId): void {
    for (const other of this.handlers.keys()) {
      if (other !== id) {
        this.cut.add(`${id}-${other}`);
        this.cut.add(`${other}-${id}`);
      }
    }
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}-${b}`);
    this.cut.add(`${b}-${a}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Forgets a node's handler (a stopped node). */
  detach(id: NodeId): void {
    this.handlers.delete(id);
  }
}
