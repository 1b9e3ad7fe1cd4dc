import type { Message } from '../core/messages';
import type { Entry, NodeId, SnapshotMeta } from '../core/types';

/**
 * How Raft messages travel between nodes. Fire-and-forget: `send` never waits and may lose,
 * delay, duplicate or reorder messages — Raft tolerates all of that. The network transport
 * (HTTP, TCP…) belongs to the app; tests use `MemoryNetwork` from `@dmq/raft-core/testing`.
 */
export interface Transport {
  /** Sends `message` to node `to`. Must not throw for an unreachable peer (drop it instead). */
  send(to: NodeId, message: Message): void;
  /** Registers the handler for incoming messages (one handler; a later call replaces it). */
  onMessage(handler: (message: Message) => void): void;
}

/**
 * The replicated application. Entries are opaque bytes to Raft; the state machine decodes
 * them. Apply must be deterministic (same entries → same state on every node).
 */
export interface StateMachine<Result = unknown> {
  /**
   * Applies a committed `normal` entry with a command (the leaders' empty no-op entries and
   * `conf-change` entries are not passed). Called in log order, exactly once per entry per
   * incarnation (after a restart, entries after the latest snapshot are applied again on a
   * fresh state restored from it).
   */
  apply(entry: Entry): Result | Promise<Result>;
  /**
   * An image of the state as of the last applied entry, as a stream of chunks. The image must
   * be captured when `snapshot()` is called (copy or freeze it): entries applied while the
   * stream is consumed must not leak into it.
   */
  snapshot(): AsyncIterable<Uint8Array>;
  /** Replaces the whole state by the image of snapshot `meta`. */
  restore(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void>;
}

/** An opaque timer handle of a {@link Clock}. */
export type TimerHandle = unknown;

/** Time for the driver: injectable so tests and simulations control it. */
export interface Clock {
  /** Milliseconds since an arbitrary origin; monotonic. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock (the Node.js timers and `performance.now()`). */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Structured logging (pino-compatible: `logger.info({ nodeId, term }, 'message')`). The app
 * injects its logger; libraries never log to the console.
 */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A Logger that discards everything. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
