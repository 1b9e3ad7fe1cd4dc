import type { Entry, SnapshotMeta } from '../core/types';
import type { StateMachine } from './ports';

/**
 * A tiny state machine for tests: it records every applied command (as text) and returns
 * the number of commands applied so far. Snapshots are the JSON of that list, streamed in
 * small chunks.
 */
export class MemoryStateMachine implements StateMachine<number> {
  commands: string[] = [];
  lastApplied = 0;
  restores = 0;

  constructor(private readonly chunkBytes = 16) {}

  apply(entry: Entry): number {
    if (entry.index <= this.lastApplied)
      throw new Error(`applied ${entry.index} after ${this.lastApplied}`);
    this.lastApplied = entry.index;
    this.commands.push(new TextDecoder().decode(entry.data));
    return this.commands.length;
  }

  async *snapshot(): AsyncIterable<Uint8Array> {
    const image = new TextEncoder().encode(
      JSON.stringify({ commands: this.commands, lastApplied: this.lastApplied }),
    );
    for (let at = 0; at < image.length; at += this.chunkBytes) {
      await Promise.resolve();
      yield image.slice(at, at + this.chunkBytes);
    }
  }

  async restore(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    const state = JSON.parse(new TextDecoder().decode(bytes)) as {
      commands: string[];
      lastApplied: number;
    };
    this.commands = state.commands;
    this.lastApplied = meta.index;
    this.restores++;
  }
}
