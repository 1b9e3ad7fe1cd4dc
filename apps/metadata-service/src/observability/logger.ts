import pino, { type Logger } from 'pino';

/** What every log line says about Raft, read when the line is written. */
export interface RaftLogContext {
  readonly term: number;
  readonly role: string;
}

/**
 * The process logger: JSON lines on stdout with the node id, and the Raft term and role
 * of the moment, on every line.
 */
export function createLogger(options: {
  readonly nodeId: number;
  readonly level: string;
  readonly raft: () => RaftLogContext | undefined;
  readonly destination?: pino.DestinationStream;
}): Logger {
  return pino(
    {
      level: options.level,
      base: { nodeId: options.nodeId },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const raft = options.raft();
        return raft === undefined ? {} : { term: raft.term, role: raft.role };
      },
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
