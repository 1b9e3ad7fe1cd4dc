import type { Entry, SnapshotMeta, StateMachine } from '@dmq/raft-core';
import { MetadataStateMachine, type ApplyResult } from '@dmq/state-machine';

/** Told after every applied entry (on the applying node, in log order). */
export type AppliedListener = (index: number, result: ApplyResult) => void;

/**
 * The bridge between Raft and the metadata state machine: Raft's `StateMachine` port over a
 * {@link MetadataStateMachine}, which it replaces wholesale when a snapshot is restored.
 *
 * It also lets the HTTP layer wait for versions (long-poll, `minVersion`) without polling:
 * waiters are kept sorted by the version they need and woken by `apply`.
 */
export class MetadataState implements StateMachine<ApplyResult> {
  private machine = new MetadataStateMachine();
  private readonly listeners = new Set<AppliedListener>();
  private waiters: Array<{ version: number; wake: () => void }> = [];

  /** The current state machine (replaced on snapshot restore: do not keep it). */
  get current(): MetadataStateMachine {
    return this.machine;
  }

  /** The metadata version: Raft index of the last applied metadata command. */
  get version(): number {
    return this.machine.version;
  }

  onApplied(listener: AppliedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(entry: Entry): ApplyResult {
    const result = this.machine.apply(entry.index, entry.data);
    for (const listener of this.listeners) listener(entry.index, result);
    this.wake();
    return result;
  }

  /**
   * Captures the image at once (entries applied while it is streamed must not leak into it),
   * then streams it chunk by chunk.
   */
  snapshot(): AsyncIterable<Uint8Array> {
    const chunks = [...this.machine.snapshot()];
    return (async function* stream() {
      for (const chunk of chunks) yield chunk;
    })();
  }

  async restore(chunks: AsyncIterable<Uint8Array>, _meta: SnapshotMeta): Promise<void> {
    this.machine = await MetadataStateMachine.restoreAsync(chunks);
    this.wake();
  }

  /**
   * Resolves once the version is at least `version`, or when `signal` fires or `timeoutMs`
   * passes (whichever first); never rejects.
   */
  waitForVersion(version: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.machine.version >= version || signal?.aborted === true) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter = { version, wake: () => done() };
      const timer = setTimeout(() => done(), timeoutMs);
      const onAbort = () => done();
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        resolve();
      };
      // Keep waiters sorted by version so apply wakes only the satisfied prefix.
      let i = this.waiters.length;
      while (i > 0 && (this.waiters[i - 1] as { version: number }).version > version) i -= 1;
      this.waiters.splice(i, 0, waiter);
    });
  }

  private wake(): void {
    const version = this.machine.version;
    while (this.waiters.length > 0 && (this.waiters[0] as { version: number }).version <= version) {
      (this.waiters.shift() as { wake: () => void }).wake();
    }
  }
}
