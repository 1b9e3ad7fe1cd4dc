/**
 * Throughput of the Raft core and driver with in-memory storage and transport, 3 nodes.
 *
 *   npx tsx libs/raft-core/bench/core-throughput.bench.ts [--entries 1000000]
 *
 * Not a test: prints a markdown table. "Committed" means applied on the leader (a majority
 * persisted it). Entries are 16-byte commands.
 */
import { performance } from 'node:perf_hooks';
import { RaftNode } from '../src/driver/raft-node';
import type { StateMachine } from '../src/driver/ports';
import { RawNode } from '../src/core/raw-node';
import type { Message } from '../src/core/messages';
import { MemoryStorage } from '../src/storage/memory-storage';
import { MemorySnapshotStore } from '../src/storage/memory-snapshot-store';
import { MemoryNetwork } from '../src/driver/memory-transport';

const argEntries = process.argv.indexOf('--entries');
const TOTAL = argEntries > 0 ? Number(process.argv[argEntries + 1]) : 600_000;
const PAYLOAD = new Uint8Array(16).fill(7);
const VOTERS = [1, 2, 3];

interface Row {
  scenario: string;
  batch: number;
  entries: number;
  seconds: number;
  perSecond: number;
}

/** The synchronous core alone: RawNodes stepped in one loop (what the simulation drives). */
function benchCore(batch: number, total: number): Row {
  const nodes = new Map<number, { raw: RawNode; storage: MemoryStorage }>();
  for (const id of VOTERS) {
    const storage = new MemoryStorage({ conf: { voters: VOTERS, learners: [] } });
    nodes.set(id, {
      raw: new RawNode({ id, storage, maxInflightMsgs: 64, maxSizePerMsg: 1 << 20 }),
      storage,
    });
  }
  let queue: Message[] = [];
  let leaderApplied = 0;
  const processReady = (id: number): boolean => {
    const node = nodes.get(id);
    if (node === undefined || !node.raw.hasReady()) return false;
    const rd = node.raw.ready();
    if (rd.entries.length > 0) node.storage.append(rd.entries);
    if (rd.hardState !== undefined) node.storage.setHardState(rd.hardState);
    for (const m of rd.messages) queue.push(m);
    if (id === 1) leaderApplied += rd.committedEntries.length;
    node.raw.advance(rd);
    return true;
  };
  const pump = (): void => {
    let busy = true;
    while (busy) {
      busy = false;
      for (const id of VOTERS) busy = processReady(id) || busy;
      const messages = queue;
      queue = [];
      for (const m of messages) nodes.get(m.to)?.raw.step(m);
      if (messages.length > 0) busy = true;
    }
  };
  const leader = nodes.get(1);
  if (leader === undefined) throw new Error('no leader');
  leader.raw.campaign();
  pump();
  if (!leader.raw.isLeader()) throw new Error('node 1 did not win');
  leaderApplied = 0;
  const payloads = Array.from({ length: batch }, () => PAYLOAD);
  const started = performance.now();
  let proposed = 0;
  while (proposed < total) {
    leader.raw.propose(...payloads);
    proposed += batch;
    pump();
  }
  const seconds = (performance.now() - started) / 1000;
  const committed = leaderApplied;
  return {
    scenario: 'RawNode core, sync loop',
    batch,
    entries: committed,
    seconds,
    perSecond: committed / seconds,
  };
}

class CountingStateMachine implements StateMachine<void> {
  applied = 0;
  apply(): void {
    this.applied++;
  }
  async *snapshot(): AsyncIterable<Uint8Array> {
    await Promise.resolve();
    yield new Uint8Array(0);
  }
  async restore(): Promise<void> {
    await Promise.resolve();
  }
}

/** The async driver: RaftNode × 3 over MemoryNetwork, proposals in flight windows. */
async function benchDriver(window: number, total: number): Promise<Row> {
  const network = new MemoryNetwork();
  const nodes: RaftNode<void>[] = [];
  for (const id of VOTERS) {
    nodes.push(
      new RaftNode<void>({
        id,
        storage: new MemoryStorage({ conf: { voters: VOTERS, learners: [] } }),
        snapshotStore: new MemorySnapshotStore(),
        stateMachine: new CountingStateMachine(),
        transport: network.transport(id),
        tickMs: 20,
        randomSeed: id,
        snapshotEvery: 0,
        raft: { maxInflightMsgs: 64 },
      }),
    );
  }
  for (const node of nodes) await node.start();
  let leader: RaftNode<void> | undefined;
  while (leader === undefined) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    leader = nodes.find((n) => n.isLeader());
  }
  const started = performance.now();
  let done = 0;
  while (done < total) {
    const outcomes: Promise<unknown>[] = [];
    for (let i = 0; i < window; i++) outcomes.push(leader.propose(PAYLOAD));
    await Promise.all(outcomes);
    done += window;
  }
  const seconds = (performance.now() - started) / 1000;
  for (const node of nodes) await node.stop();
  return {
    scenario: 'RaftNode driver, MemoryNetwork',
    batch: window,
    entries: done,
    seconds,
    perSecond: done / seconds,
  };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  benchCore(256, 50_000); // warm-up
  for (const batch of [1, 64, 256, 1024])
    rows.push(benchCore(batch, batch === 1 ? Math.min(TOTAL, 50_000) : TOTAL));
  await benchDriver(256, 20_000); // warm-up
  for (const window of [1, 256, 4096])
    rows.push(await benchDriver(window, window === 1 ? Math.min(TOTAL / 20, 10_000) : TOTAL / 2));
  console.log(
    `\n3 voters, in-memory storage and transport, ${PAYLOAD.length}-byte entries, Node ${process.version}\n`,
  );
  console.log('| scenario | batch / window | entries committed | seconds | entries/s |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.scenario} | ${r.batch} | ${r.entries} | ${r.seconds.toFixed(2)} | ${Math.round(r.perSecond).toLocaleString('en-US')} |`,
    );
  }
}

void main();
