import {
  LeadershipLostError,
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
} from '../core/errors';
import type { Logger } from './ports';
import { TestRaftCluster } from './test-raft-cluster';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function recordingLogger(): Logger & {
  lines: { level: string; fields: object; message: string }[];
} {
  const lines: { level: string; fields: object; message: string }[] = [];
  const at =
    (level: string) =>
    (fields: object, message: string): void => {
      lines.push({ level, fields, message });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('RaftNode (driver over a manual clock)', () => {
  let cluster: TestRaftCluster;
  afterEach(async () => {
    await cluster.stop();
  });

  it('elects a leader and resolves proposals with their position and apply result', async () => {
    cluster = new TestRaftCluster([1, 2, 3]);
    await cluster.start();
    const leader = await cluster.waitForLeader();
    const outcome = leader.propose(text('hello'));
    await cluster.advance(50);
    await expect(outcome).resolves.toEqual({
      index: expect.any(Number),
      term: expect.any(Number),
      result: 1,
    });
    await cluster.advance(50);
    for (const id of [1, 2, 3]) expect(cluster.stateMachine(id).commands).toEqual(['hello']);
  });

  it('rejects proposals on a follower with NotLeaderError carrying the leader id', async () => {
    cluster = new TestRaftCluster([1, 2, 3]);
    await cluster.start();
    const leader = await cluster.waitForLeader();
    await cluster.advance(30);
    const follower = [...cluster.nodes.values()].find((n) => n !== leader);
    const attempt = follower?.propose(text('x')).catch((error: unknown) => error);
    await cluster.settle();
    const error = await attempt;
    expect(error).toBeInstanceOf(NotLeaderError);
    expect(error).toMatchObject({ code: 'raft/not-leader', leaderId: leader.id });
  });

  it('group commit: concurrent proposals share appends and fsyncs', async () => {
    cluster = new TestRaftCluster([1, 2, 3]);
    await cluster.start();
    const leader = await cluster.waitForLeader();
    await cluster.advance(30);
    const storage = cluster.storages.get(leader.id);
    if (storage === undefined) throw new Error('no storage');
    const sync = jest.spyOn(storage, 'sync');
    const outcomes = Array.from({ length: 200 }, (_, i) => leader.propose(text(`p${i}`)));
    await cluster.settle();
    const results = await Promise.all(outcomes);
    expect(results.map((r) => r.result)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(sync.mock.calls.length).toBeLessThan(10);
  });

  it('fails pending proposals with LeadershipLostError when the leader loses its quorum', async () => {
    cluster = new TestRaftCluster([1, 2, 3]);
    await cluster.start();
    const leader = await cluster.waitForLeader();
    await cluster.advance(30);
    cluster.network.isolate(leader.id);
    const outcome = leader.propose(text('doomed'));
    const caught = outcome.catch((error: unknown) => error);
    await cluster.advance(cluster.tickMs * 25);
    const error = await caught;
    expect(error).toBeInstanceOf(LeadershipLostError);
    expect(error).toMatchObject({ code: 'raft/leadership-lost', definite: false });
    cluster.network.heal();
    const newLeader = await cluster.waitForLeader();
    expect(newLeader.id).not.toBe(leader.id);
  });

  it('serves linearizable reads with ReadIndex on the leader and on followers', async () => {
    cluster = new TestRaftCluster([1, 2, 3]);
    await cluster.start();
    const leader = await cluster.waitForLeader();
    const committed = leader.propose(text('a'));
    await cluster.advance(30);
    const { index } = await committed;
    const follower = [...cluster.nodes.values()].find((n) => n !== leader);
    if (follower === undefined) throw new Error('no follower');
    const reads = [leader.readIndex(), follower.readIndex()];
    await cluster.advance(30);
    for (const read of await Promise.all(reads)) expect(read).toBeGreaterThanOrEqual(index);
    expect(cluster.stateMachine(follower.id).commands).toEqual(['a']);
  });

  it('replays the log on restart and logs how many entries it replayed', async () => {
    const logger = recordingLogger();
    cluster = new TestRaftCluster([1, 2, 3], { logger });
    await cluster.start();
    const leader = await cluster.waitForLeader();
    const outcomes = [1, 2, 3, 4, 5].map((i) => leader.propose(text(`c${i}`)));
    await cluster.advance(50);
    await Promise.all(outcomes);
    await cluster.advance(50);
    const follower = [...cluster.nodes.values()].find((n) => n !== leader);
    if (follower === undefined) throw new Error('no follower');
    logger.lines.length = 0;
    await cluster.restart(follower.id);
    expect(cluster.stateMachine(follower.id).commands).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    const replay = logger.lines.find((l) => /^Replayed \d+ Raft log entries$/.test(l.message));
    expect(replay?.fields).toMatchObject({ nodeId: follower.id, replayMs: expect.any(Number) });
    // 5 commands + the no-op of the leader's term, at least.
    expect(replay?.message).toMatch(/^Replayed [6-9] Raft log entries$/);
  });

  it('compacts the log and catches a lagging follower up with a chunked snapshot', async () => {
    cluster = new TestRaftCluster([1, 2, 3], {
      node: { snapshotEvery: 20, snapshotChunkBytes: 64, snapshotWindow: 2 },
    });
    await cluster.start();
    const leader = await cluster.waitForLeader();
    await cluster.advance(30);
    const lagging = [...cluster.nodes.values()].find((n) => n !== leader);
    if (lagging === undefined) throw new Error('no follower');
    cluster.network.isolate(lagging.id);
    const outcomes = Array.from({ length: 60 }, (_, i) => leader.propose(text(`s${i}`)));
    await cluster.advance(50);
    await Promise.all(outcomes);
    expect(leader.status().snapshotIndex).toBeGreaterThan(20);
    const chunks: number[] = [];
    cluster.network.filter = (m) => {
      if (m.type === 'snapshot-chunk') chunks.push(m.offset);
      return true;
    };
    cluster.network.heal();
    await cluster.advance(cluster.tickMs * 20);
    expect(cluster.stateMachine(lagging.id).restores).toBe(1);
    expect(chunks.length).toBeGreaterThan(3); // streamed in 64-byte chunks
    expect(cluster.stateMachine(lagging.id).commands).toEqual(
      cluster.stateMachine(leader.id).commands,
    );
    expect(cluster.stateMachine(lagging.id).commands).toHaveLength(60);
  });

  it('takes a snapshot on request and compacts the log, or reports the latest when nothing is new', async () => {
    cluster = new TestRaftCluster([1, 2, 3], { node: { snapshotEvery: 0 } });
    await cluster.start();
    const leader = await cluster.waitForLeader();
    const outcomes = Array.from({ length: 10 }, (_, i) => leader.propose(text(`n${i}`)));
    await cluster.advance(50);
    await Promise.all(outcomes);
    expect(leader.status().snapshotIndex).toBe(0);
    const taking = leader.snapshotNow();
    await cluster.settle();
    const taken = await taking;
    expect(taken.index).toBe(leader.status().applied);
    expect(taken.bytes).toBeGreaterThan(0);
    expect(leader.status().snapshotIndex).toBe(taken.index);
    const storage = cluster.storages.get(leader.id);
    expect(storage?.firstIndex()).toBe(taken.index + 1);
    const again = leader.snapshotNow();
    await cluster.settle();
    await expect(again).resolves.toEqual({ index: taken.index, term: taken.term, bytes: 0 });
  });

  it('flow-controls snapshot chunks: at most `snapshotWindow` unacknowledged, retried after a timeout', async () => {
    cluster = new TestRaftCluster([1, 2, 3], {
      node: { snapshotEvery: 10, snapshotChunkBytes: 32, snapshotWindow: 3, requestTimeoutMs: 200 },
    });
    await cluster.start();
    const leader = await cluster.waitForLeader();
    await cluster.advance(30);
    const lagging = [...cluster.nodes.values()].find((n) => n !== leader);
    if (lagging === undefined) throw new Error('no follower');
    cluster.network.isolate(lagging.id);
    const outcomes = Array.from({ length: 30 }, (_, i) => leader.propose(text(`w${i}`)));
    await cluster.advance(50);
    await Promise.all(outcomes);
    let chunks = 0;
    let dropAcks = true;
    cluster.network.filter = (m) => {
      if (m.type === 'snapshot-chunk') chunks++;
      return !(dropAcks && m.type === 'snapshot-ack');
    };
    cluster.network.heal();
    await cluster.advance(cluster.tickMs * 5);
    expect(chunks).toBe(3); // the window, then the sender waits for acknowledgements
    dropAcks = false;
    await cluster.advance(400); // the stalled stream times out; the next attempt completes
    expect(chunks).toBeGreaterThan(3);
    expect(cluster.stateMachine(lagging.id).commands).toHaveLength(30);
  });

  it('transfers leadership and stops gracefully', async () => {
    cluster = new TestRaftCluster([1, 2, 3]);
    await cluster.start();
    const leader = await cluster.waitForLeader();
    await cluster.advance(30);
    const target = [...cluster.nodes.values()].find((n) => n !== leader);
    if (target === undefined) throw new Error('no follower');
    const transferred = leader.transferLeadership(target.id);
    await cluster.advance(50);
    await expect(transferred).resolves.toBe(true);
    expect(cluster.leader()?.id).toBe(target.id);
    // Graceful stop of the (new) leader hands leadership over before stopping.
    const stopping = target.stop({ transferLeadership: true });
    await cluster.advance(100);
    await stopping;
    const after = [...cluster.nodes.values()].filter((n) => n !== target && n.isLeader());
    expect(after).toHaveLength(1);
    await expect(target.propose(text('late'))).rejects.toBeInstanceOf(NodeStoppedError);
  });

  it('adds a voter through a learner, then removes the leader which steps down', async () => {
    cluster = new TestRaftCluster([1, 2, 3]);
    await cluster.start();
    const leader = await cluster.waitForLeader();
    const first = leader.propose(text('before'));
    await cluster.advance(30);
    await first;
    const joining = await cluster.addNode(4);
    const added = leader.addVoter(4);
    await cluster.advance(cluster.tickMs * 40);
    await added;
    expect(leader.status().conf.voters).toEqual([1, 2, 3, 4]);
    expect(cluster.stateMachine(4).commands).toEqual(['before']);
    expect(joining.status().conf.voters).toEqual([1, 2, 3, 4]);
    const removal = leader.proposeConfChange({ type: 'remove', nodeId: leader.id });
    await cluster.advance(cluster.tickMs * 5);
    await removal;
    await cluster.advance(cluster.tickMs * 30);
    expect(leader.isLeader()).toBe(false);
    const next = await cluster.waitForLeader();
    expect(next.id).not.toBe(leader.id);
    expect(next.status().conf.voters).not.toContain(leader.id);
    const after = next.propose(text('after'));
    await cluster.advance(30);
    await expect(after).resolves.toMatchObject({ result: 2 });
  });

  it('refuses proposals with reason uncommitted-limit while commits stall, and accepts them again after', async () => {
    cluster = new TestRaftCluster([1, 2, 3], {
      node: { raft: { maxUncommittedEntriesSize: 100 } },
    });
    await cluster.start();
    const leader = await cluster.waitForLeader();
    await cluster.advance(30);
    for (const other of cluster.nodes.keys())
      if (other !== leader.id) cluster.network.cutLink(leader.id, other);
    // Ten 10-byte commands fill the budget; no time passes, so check-quorum keeps the leader.
    const pending = Array.from({ length: 10 }, (_, i) => leader.propose(text(`stalled-0${i}`)));
    for (const outcome of pending) void outcome.catch(() => undefined); // stop() rejects on failure
    await cluster.settle();
    expect(leader.status().uncommittedSize).toBe(100);
    const refused = leader.propose(text('one-more')).catch((error: unknown) => error);
    await cluster.settle();
    const error = await refused;
    expect(error).toBeInstanceOf(ProposalDroppedError);
    expect(error).toMatchObject({ code: 'raft/proposal-dropped', reason: 'uncommitted-limit' });
    cluster.network.heal();
    await cluster.advance(cluster.tickMs * 3);
    await Promise.all(pending);
    expect(leader.status().uncommittedSize).toBe(0);
    const retried = leader.propose(text('one-more'));
    await cluster.advance(30);
    await expect(retried).resolves.toMatchObject({ result: 11 });
  });

  it('reportUnreachable stops pipelining to a follower: replicate → probe', async () => {
    cluster = new TestRaftCluster([1, 2, 3]);
    cluster.node(2).reportUnreachable(3); // before start: ignored
    await cluster.start();
    const leader = await cluster.waitForLeader();
    const committed = leader.propose(text('a'));
    await cluster.advance(30);
    await committed;
    const follower = [...cluster.nodes.keys()].find((id) => id !== leader.id) ?? 0;
    expect(leader.status().progress.get(follower)?.state).toBe('replicate');
    leader.reportUnreachable(follower);
    await cluster.settle();
    expect(leader.status().progress.get(follower)?.state).toBe('probe');
    // The follower's next append answer puts it back into replicate.
    const next = leader.propose(text('b'));
    await cluster.advance(30);
    await next;
    expect(leader.status().progress.get(follower)?.state).toBe('replicate');
    for (const id of cluster.nodes.keys())
      expect(cluster.stateMachine(id).commands).toEqual(['a', 'b']);
  });
});
