import { MemoryStorage } from '../storage/memory-storage';
import { TestCluster } from './cluster.test-util';
import { encodeConfChange } from './conf-change';
import { NotLeaderError, ProposalDroppedError } from './errors';
import type { AppendRequest, Message } from './messages';
import { RawNode } from './raw-node';
import type { Entry } from './types';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const entry = (index: number, term: number, data = ''): Entry => ({
  index,
  term,
  kind: 'normal',
  data: text(data),
});

/** Persists and advances one Ready like the driver would, returning it. */
function persist(raw: RawNode, storage: MemoryStorage): ReturnType<RawNode['ready']> {
  const rd = raw.ready();
  storage.append(rd.entries);
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  raw.advance(rd);
  return rd;
}

/** Builds a node whose storage already holds `entries` and `term`. */
function nodeWithLog(id: number, voters: number[], entries: Entry[], term: number): RawNode {
  const storage = new MemoryStorage({
    conf: { voters, learners: [] },
    entries,
    hardState: { term, vote: 0, commit: 0 },
  });
  return new RawNode({ id, storage, randomSeed: id });
}

function storageOf(raw: RawNode): MemoryStorage {
  return raw.raft.log.storage as MemoryStorage;
}

describe('leader election (§3.4)', () => {
  it('elects a leader on election timeout, with pre-vote, without spurious terms', () => {
    const c = new TestCluster([1, 2, 3]);
    c.tickAll(30);
    expect(c.leaders()).toHaveLength(1);
    const leader = c.leaders()[0] ?? 0;
    for (const id of [1, 2, 3]) expect(c.raw(id).raft.lead).toBe(leader);
    // Pre-vote then vote: exactly one term was used.
    expect(c.raw(leader).raft.term).toBe(1);
  });

  it('election safety: at most one leader per term across many elections', () => {
    const c = new TestCluster([1, 2, 3, 4, 5]);
    const leaderOfTerm = new Map<number, number>();
    for (let round = 0; round < 400; round++) {
      if (round % 37 === 0) c.isolate(1 + (round % 5));
      if (round % 37 === 20) c.heal();
      c.tickAll();
      for (const node of c.nodes.values()) {
        if (!node.raw.isLeader()) continue;
        const term = node.raw.raft.term;
        const known = leaderOfTerm.get(term);
        if (known !== undefined) expect(known).toBe(node.id);
        leaderOfTerm.set(term, node.id);
      }
    }
    expect(leaderOfTerm.size).toBeGreaterThan(1);
  });

  it('votes at most once per term and persists the vote before answering', () => {
    const c = new TestCluster([1, 2, 3], { preVote: false });
    c.raw(1).campaign();
    c.processReady(1);
    const requests = c.queue.filter((m) => m.type === 'vote-request');
    c.queue = [];
    // Node 2 votes for 1: the same Ready that carries the vote response carries the hard state.
    for (const m of requests) if (m.to === 2) c.raw(2).step(m);
    const rd = c.raw(2).ready();
    expect(rd.hardState).toEqual(expect.objectContaining({ term: 1, vote: 1 }));
    expect(rd.mustSync).toBe(true);
    expect(rd.messages).toEqual([
      expect.objectContaining({ type: 'vote-response', granted: true, to: 1 }),
    ]);
    c.raw(2).advance(rd);
    // A competing candidate of the same term is refused.
    c.raw(2).step({
      type: 'vote-request',
      from: 3,
      to: 2,
      term: 1,
      preVote: false,
      lastLogIndex: 10,
      lastLogTerm: 5,
      transfer: false,
    });
    expect(c.raw(2).ready().messages).toEqual([
      expect.objectContaining({ type: 'vote-response', granted: false }),
    ]);
  });

  it('election restriction (§3.6.1): a candidate with a less up-to-date log cannot win', () => {
    const c = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false });
    c.elect(1);
    c.propose(1, 'x');
    c.isolate(3);
    c.stabilize();
    c.heal();
    // 3 lacks the entry: 1 and 2 refuse it.
    c.elect(3);
    expect(c.raw(3).isLeader()).toBe(false);
    c.tickAll(40);
    expect(c.leaders()).toHaveLength(1);
    expect(c.leaders()[0]).not.toBe(3);
  });

  it('a candidate that hears from a leader of its term steps down', () => {
    const c = new TestCluster([1, 2, 3], { preVote: false });
    c.elect(1);
    const r3 = c.raw(3);
    r3.campaign(); // term 2 candidate, isolated from its answers
    c.queue = [];
    c.processReady(3);
    c.queue = [];
    r3.step({ type: 'heartbeat', from: 2, to: 3, term: r3.raft.term, commit: 0, context: 0 });
    expect(r3.raft.role).toBe('follower');
    expect(r3.raft.lead).toBe(2);
  });
});

describe('pre-vote and check-quorum (§9.6, §6.2, §4.2.3)', () => {
  it('a partitioned node rejoining does not disrupt a healthy leader', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const term = c.raw(1).raft.term;
    c.isolate(3);
    c.tickAll(100); // 3 keeps timing out; pre-vote keeps its term from growing
    expect(c.raw(3).raft.term).toBe(term);
    c.heal();
    c.tickAll(30);
    expect(c.leaders()).toEqual([1]);
    expect(c.raw(1).raft.term).toBe(term);
  });

  it('without pre-vote, check-quorum still ignores a rejoining node with a higher term', () => {
    const c = new TestCluster([1, 2, 3], { preVote: false });
    c.elect(1);
    c.isolate(3);
    c.tickAll(100);
    expect(c.raw(3).raft.term).toBeGreaterThan(c.raw(1).raft.term);
    c.heal();
    // 3's vote requests are ignored by 1 and 2 (they heard from the leader recently) ...
    c.tick(3, 30);
    c.stabilize();
    // ... but 1 learns the higher term from 3's answers and the cluster re-elects.
    c.tickAll(60);
    expect(c.leaders()).toHaveLength(1);
  });

  it('a leader that loses its majority steps down', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.cutLink(1, 2);
    c.cutLink(1, 3);
    c.tickAll(25);
    expect(c.raw(1).raft.role).not.toBe('leader');
    expect(() => c.propose(1, 'x')).toThrow(NotLeaderError);
  });
});

describe('log replication (§3.5)', () => {
  it('replicates, commits and applies in order on every node', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    for (let i = 0; i < 10; i++) c.propose(1, `cmd-${i}`);
    c.stabilize();
    for (const id of [1, 2, 3]) {
      expect(c.appliedTexts(id)).toEqual(Array.from({ length: 10 }, (_, i) => `cmd-${i}`));
    }
  });

  it('leader append-only: a leader never overwrites or deletes its own entries', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    const before = c.node(1).storage.entries(1, c.node(1).storage.lastIndex() + 1, Infinity);
    // A stale append from an old term is refused and leaves the leader's log intact.
    c.raw(1).step({
      type: 'append',
      from: 2,
      to: 1,
      term: 0,
      prevLogIndex: 0,
      prevLogTerm: 0,
      entries: [entry(1, 0, 'evil')],
      commit: 0,
    });
    c.stabilize();
    const after = c.node(1).storage.entries(1, before.length + 1, Infinity);
    expect(after).toEqual(before);
  });

  it('log matching: a follower rejects an append whose previous entry does not match', () => {
    const follower = nodeWithLog(2, [1, 2, 3], [entry(1, 1), entry(2, 1)], 2);
    follower.step({
      type: 'append',
      from: 1,
      to: 2,
      term: 2,
      prevLogIndex: 2,
      prevLogTerm: 2,
      entries: [entry(3, 2)],
      commit: 0,
    });
    const rd = follower.ready();
    expect(rd.entries).toEqual([]);
    expect(rd.messages).toEqual([
      expect.objectContaining({
        type: 'append-response',
        success: false,
        index: 2,
        conflictIndex: 2,
        conflictTerm: 1,
      }),
    ]);
  });

  it('log matching: a follower deletes a conflicting suffix and takes the leader entries', () => {
    const follower = nodeWithLog(2, [1, 2, 3], [entry(1, 1), entry(2, 1), entry(3, 1)], 2);
    follower.step({
      type: 'append',
      from: 1,
      to: 2,
      term: 2,
      prevLogIndex: 1,
      prevLogTerm: 1,
      entries: [entry(2, 2, 'x')],
      commit: 1,
    });
    const rd = persist(follower, storageOf(follower));
    expect(rd.entries).toEqual([entry(2, 2, 'x')]);
    expect(rd.messages).toEqual([
      expect.objectContaining({ type: 'append-response', success: true, index: 2 }),
    ]);
    expect(follower.raft.log.lastIndex()).toBe(2);
  });

  it('fast back-off skips a whole conflicting term per round trip', () => {
    // Leader: terms [1,1,1,4,4,4,4]; follower: [1,1,1,2,2,2,2,2,2,3,3] (Figure 7-like).
    const leaderLog = [1, 1, 1, 4, 4, 4, 4].map((t, i) => entry(i + 1, t));
    const followerLog = [1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3].map((t, i) => entry(i + 1, t));
    const c = new TestCluster([1, 2, 3], { preVote: false });
    c.nodes.clear();
    const mk = (id: number, log: Entry[], term: number): void => {
      const node = c.addNode(
        id,
        { voters: [1, 2, 3], learners: [] },
        new MemoryStorage({
          conf: { voters: [1, 2, 3], learners: [] },
          entries: log,
          hardState: { term, vote: 0, commit: 0 },
        }),
      );
      node.raw = new RawNode({ id, storage: node.storage, preVote: false, randomSeed: id });
    };
    mk(1, leaderLog, 4);
    mk(2, followerLog, 3);
    mk(3, leaderLog, 4);
    c.elect(1);
    const rejections = c.delivered.filter(
      (m) => m.type === 'append-response' && m.from === 2 && !m.success,
    );
    // Probe at 8 (leader last + 1 = 8 → prev 7) is rejected with hint (7, term 2); the leader
    // jumps to its last index with term <= 2, i.e. 3: two rejections instead of five.
    expect(rejections.length).toBeLessThanOrEqual(2);
    expect(
      c
        .node(2)
        .storage.entries(1, 9, Infinity)
        .map((e) => e.term),
    ).toEqual([1, 1, 1, 4, 4, 4, 4, 5]);
  });

  it('batching: many proposals become one append message and one persisted Ready', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    for (let i = 0; i < 100; i++) c.propose(1, `p${i}`);
    const rd = c.raw(1).ready();
    expect(rd.entries).toHaveLength(100);
    expect(rd.mustSync).toBe(true);
    const appends = rd.messages.filter((m): m is AppendRequest => m.type === 'append');
    expect(appends.map((m) => m.to).sort()).toEqual([2, 3]);
    for (const m of appends) expect(m.entries).toHaveLength(100);
    c.raw(1).advance(rd);
  });

  it('pipelining: several appends in flight per follower, bounded by maxInflightMsgs', () => {
    const c = new TestCluster([1, 2, 3], { maxSizePerMsg: 1, maxInflightMsgs: 4 });
    c.elect(1);
    // Drain pending traffic so both followers are in replicate state.
    c.stabilize();
    c.filter = () => false; // hold every message
    for (let i = 0; i < 20; i++) c.propose(1, `p${i}`);
    c.processReady(1);
    const toTwo = c.queue.filter((m) => m.type === 'append' && m.to === 2);
    expect(toTwo).toHaveLength(4); // one entry each (maxSizePerMsg), window of 4
    expect(c.raw(1).status().progress.get(2)?.state).toBe('replicate');
    c.filter = undefined;
    c.stabilize();
    expect(c.appliedTexts(2)).toHaveLength(20);
  });

  it('probe state sends one append at a time until the follower answers', () => {
    const c = new TestCluster([1, 2, 3], { maxSizePerMsg: 1 });
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 5; i++) c.propose(1, `p${i}`);
    c.stabilize();
    c.raw(1).reportUnreachable(3); // back to probe
    expect(c.raw(1).status().progress.get(3)?.state).toBe('probe');
    c.propose(1, 'more');
    c.processReady(1);
    const toThree = c.queue.filter((m) => m.type === 'append' && m.to === 3);
    expect(toThree.length).toBeLessThanOrEqual(1);
    c.heal();
    c.tickAll(5);
    expect(c.appliedTexts(3)).toHaveLength(6);
  });
});

describe('commitment (§3.6.2) and safety', () => {
  it('Figure 8: an entry of an earlier term is not committed by counting replicas', () => {
    // The paper's scenario, without the later disruption guards (they would hide it), and
    // one entry per message so a filter can hold back the new leader's own entries.
    const c = new TestCluster([1, 2, 3, 4, 5], {
      preVote: false,
      checkQuorum: false,
      maxSizePerMsg: 1,
    });
    // (a) S1 leads term 1 and replicates index 2 to S2 only.
    c.elect(1);
    const s1Term = c.raw(1).raft.term;
    for (const id of [3, 4, 5]) c.cutLink(1, id);
    const index2 = c.propose(1, 'old-term').index;
    c.stabilize();
    expect(c.node(2).storage.term(index2)).toBe(s1Term);
    // (b) S1 crashes; S5 wins the next term with S3 and S4 and writes index 2 locally only.
    c.heal();
    c.isolate(1);
    c.cutLink(5, 2);
    c.filter = (m) => !(m.type === 'append' && m.from === 5); // S5 crashes before replicating
    c.elect(5);
    expect(c.raw(5).isLeader()).toBe(true);
    c.isolate(5);
    c.filter = undefined;
    c.propose(5, 's5-entry');
    c.stabilize();
    // (c) S1 restarts and wins a later term with S2 and S3, then replicates its old-term
    // entry to S3. It is on a majority (S1, S2, S3) but must NOT be committed.
    c.heal();
    c.restart(1);
    c.isolate(5);
    c.isolate(4);
    // Strip the new term's entries (one per message) so only the old-term entry spreads.
    c.rewrite = (m) =>
      m.type === 'append' ? { ...m, entries: m.entries.filter((e) => e.term <= s1Term) } : m;
    for (let attempt = 0; attempt < 3 && !c.raw(1).isLeader(); attempt++) c.elect(1);
    expect(c.raw(1).isLeader()).toBe(true);
    expect(c.raw(1).raft.term).toBeGreaterThan(c.raw(5).raft.term);
    c.stabilize();
    expect([1, 2, 3].map((id) => c.node(id).storage.term(index2))).toEqual([
      s1Term,
      s1Term,
      s1Term,
    ]);
    expect(c.raw(1).raft.log.committed).toBeLessThan(index2);
    // (e) Once an entry of the current term is on a majority, both it and index 2 commit.
    c.rewrite = undefined;
    c.tickAll(2);
    c.stabilize();
    expect(c.raw(1).raft.log.committed).toBeGreaterThan(index2);
    // S5 can no longer win: the majority's logs are more up-to-date; it converges instead.
    c.heal();
    c.raw(5).campaign();
    c.stabilize();
    c.tickAll(5);
    expect(c.leaders()).toEqual([1]);
    expect(c.appliedTexts(5)).toContain('old-term');
    expect(c.appliedTexts(5)).not.toContain('s5-entry');
  });

  it('leader completeness: every committed entry is in the log of every later leader', () => {
    const c = new TestCluster([1, 2, 3, 4, 5]);
    const committed: { index: number; term: number }[] = [];
    let leader = 0;
    for (let round = 0; round < 6; round++) {
      c.tickAll(30);
      leader = c.leaders()[0] ?? 0;
      expect(leader).not.toBe(0);
      for (const earlier of committed)
        expect(c.raw(leader).raft.log.termOrZero(earlier.index)).toBe(earlier.term);
      const pos = c.propose(leader, `r${round}`);
      c.stabilize();
      committed.push(pos);
      c.heal();
      c.isolate(leader); // force another leader next round
    }
  });

  it('state machine safety: no two nodes apply different entries at one index', () => {
    const c = new TestCluster([1, 2, 3]);
    for (let round = 0; round < 8; round++) {
      c.tickAll(30);
      const leader = c.leaders()[0];
      if (leader !== undefined) {
        c.propose(leader, `x${round}`);
        if (round % 2 === 0) c.isolate(leader);
      }
      c.tickAll(3);
      if (round % 2 === 1) c.heal();
    }
    c.heal();
    c.tickAll(40);
    const byIndex = new Map<number, string>();
    for (const node of c.nodes.values()) {
      for (const e of node.applied) {
        const key = `${e.term}:${new TextDecoder().decode(e.data)}`;
        const seen = byIndex.get(e.index);
        if (seen !== undefined) expect(key).toBe(seen);
        byIndex.set(e.index, key);
      }
    }
  });

  it('restarts from storage with term, vote and log intact', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    const term = c.raw(2).raft.term;
    c.restart(2);
    expect(c.raw(2).raft.term).toBe(term);
    expect(c.raw(2).raft.vote).toBe(1);
    c.tickAll(3);
    expect(c.appliedTexts(2)).toEqual(['a']);
  });
});

describe('snapshots (§5)', () => {
  it('a lagging follower whose entries were compacted is caught up with a snapshot', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 10; i++) c.propose(1, `s${i}`);
    c.stabilize();
    const leader = c.node(1);
    const index = leader.raw.raft.log.applied;
    leader.storage.applySnapshotSync({
      index,
      term: leader.storage.term(index),
      conf: { voters: [1, 2, 3], learners: [] },
    });
    c.heal();
    c.tickAll(5);
    const sent = c.delivered.filter((m: Message) => m.type === 'snapshot-chunk' && m.to === 3);
    expect(sent.length).toBeGreaterThan(0);
    expect(c.node(3).storage.snapshotMeta().index).toBe(index);
    c.propose(1, 'after');
    c.stabilize();
    expect(c.raw(3).raft.log.committed).toBe(c.raw(1).raft.log.committed);
    expect(c.appliedTexts(3)).toEqual(['after']);
  });
});

describe('a follower that lost its log (wiped data directory)', () => {
  function wipe(c: TestCluster, id: number): void {
    c.addNode(id, { voters: [1, 2, 3], learners: [] }); // fresh storage, same id
  }

  it('reports it and is caught up from what it still holds', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    for (let i = 0; i < 5; i++) c.propose(1, `a${i}`);
    c.stabilize();
    const committed = c.raw(1).raft.log.committed;
    expect(c.raw(1).raft.trk.mustGet(3).match).toBe(committed);
    wipe(c, 3);
    c.tick(1, 1); // heartbeatTick = 1: the leader sends heartbeats
    c.stabilize();
    // The heartbeat's commit was beyond the wiped log: it said so instead of failing.
    const lost = c.delivered.filter((m) => m.type === 'log-lost');
    expect(lost).toEqual([expect.objectContaining({ from: 3, to: 1, lastIndex: 0 })]);
    expect(c.raw(3).raft.log.lastIndex()).toBe(committed);
    expect(c.appliedTexts(3)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
  });

  it('is caught up by snapshot when the leader compacted what it lost', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    for (let i = 0; i < 5; i++) c.propose(1, `b${i}`);
    c.stabilize();
    const leader = c.node(1);
    const index = leader.raw.raft.log.applied;
    leader.storage.applySnapshotSync({
      index,
      term: leader.storage.term(index),
      conf: { voters: [1, 2, 3], learners: [] },
    });
    wipe(c, 3);
    c.tick(1, 1); // heartbeatTick = 1: the leader sends heartbeats
    c.stabilize();
    expect(c.delivered.some((m) => m.type === 'snapshot-chunk' && m.to === 3)).toBe(true);
    expect(c.node(3).storage.snapshotMeta().index).toBe(index);
    c.propose(1, 'after');
    c.stabilize();
    expect(c.appliedTexts(3)).toEqual(['after']);
  });

  it('a stale report below what the follower holds changes nothing', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'x');
    c.stabilize();
    const before = c.raw(1).raft.trk.mustGet(2).match;
    c.deliver({ type: 'log-lost', from: 2, to: 1, term: c.raw(1).raft.term, lastIndex: before });
    c.stabilize();
    expect(c.raw(1).raft.trk.mustGet(2).match).toBe(before);
  });
});

describe('a follower whose log this cluster did not build', () => {
  it('claims to hold more than the leader: ignored and counted, the leader does not fail', () => {
    // E.g. a node that kept its log while the others were wiped and re-bootstrapped: it
    // answers appends below its commit index with that commit index (§5.3 receiver rule).
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'x');
    c.stabilize();
    const leader = c.raw(1);
    const last = leader.raft.log.lastIndex();
    const before = leader.raft.trk.mustGet(3).match;
    c.deliver({
      type: 'append-response',
      from: 3,
      to: 1,
      term: leader.raft.term,
      success: true,
      index: last + 40,
      conflictIndex: 0,
      conflictTerm: 0,
    });
    expect(leader.raft.trk.mustGet(3).match).toBe(before);
    expect(leader.status().acksBeyondLog).toBe(1);
    // Replication to everyone goes on.
    c.propose(1, 'y');
    c.tick(1, 1);
    c.stabilize();
    expect(c.appliedTexts(2)).toEqual(['x', 'y']);
    expect(leader.raft.log.committed).toBe(last + 1);
  });
});

describe('ReadIndex (§6.4)', () => {
  it('the leader confirms leadership with a heartbeat round before serving a read', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    c.raw(1).readIndex(42);
    c.processReady(1);
    expect(c.node(1).readStates).toEqual([]); // not before the round
    expect(c.queue.filter((m) => m.type === 'heartbeat' && m.context > 0)).toHaveLength(2);
    c.stabilize();
    expect(c.node(1).readStates).toEqual([{ context: 42, index: c.raw(1).raft.log.committed }]);
  });

  it('a deposed leader cannot confirm a read (no quorum answers)', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.stabilize();
    c.isolate(1);
    c.raw(1).readIndex(7);
    c.stabilize();
    expect(c.node(1).readStates).toEqual([]);
    c.tickAll(30); // check-quorum steps it down: the read fails
    expect(c.node(1).readFailures).toEqual([7]);
  });

  it('waits for the first commit of the leader term before serving a read (§6.4 step 1)', () => {
    const c = new TestCluster([1, 2, 3]);
    // Node 1 wins, but the append-responses to its no-op are lost: nothing of its term commits.
    c.filter = (m) => m.type !== 'append-response';
    c.elect(1);
    expect(c.raw(1).isLeader()).toBe(true);
    const noop = c.raw(1).raft.log.lastIndex();
    expect(c.raw(1).raft.log.committed).toBeLessThan(noop);
    c.raw(1).readIndex(11);
    c.stabilize();
    expect(c.node(1).readStates).toEqual([]);
    expect(c.delivered.some((m) => m.type === 'heartbeat' && m.context > 0)).toBe(false);
    // Once the no-op commits, the read gets a read index that includes it.
    c.filter = undefined;
    c.tickAll(2);
    expect(c.node(1).readStates).toEqual([{ context: 11, index: noop }]);
  });

  it('followers forward read requests to the leader', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    c.raw(2).readIndex(9);
    c.stabilize();
    expect(c.node(2).readStates).toEqual([{ context: 9, index: c.raw(1).raft.log.committed }]);
  });

  it('lease-based reads answer without a round trip', () => {
    const c = new TestCluster([1, 2, 3], { readOnly: 'lease-based' });
    c.elect(1);
    c.stabilize();
    c.raw(1).readIndex(5);
    c.processReady(1);
    expect(c.node(1).readStates).toEqual([{ context: 5, index: c.raw(1).raft.log.committed }]);
  });

  it('a follower without a leader fails the read at once', () => {
    const c = new TestCluster([1, 2, 3]);
    c.raw(2).readIndex(3);
    c.processReady(2);
    expect(c.node(2).readFailures).toEqual([3]);
  });
});

describe('leadership transfer (§3.10)', () => {
  it('transfers to an up-to-date follower with TimeoutNow', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    c.raw(1).transferLeadership(2);
    c.stabilize();
    expect(c.leaders()).toEqual([2]);
    expect(c.delivered.some((m) => m.type === 'timeout-now' && m.to === 2)).toBe(true);
  });

  it('catches the target up first, refuses proposals meanwhile, and aborts after an election timeout', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.propose(1, 'a');
    c.stabilize();
    c.raw(1).transferLeadership(3); // 3 is behind and unreachable
    expect(() => c.propose(1, 'b')).toThrow(ProposalDroppedError);
    c.stabilize();
    expect(c.raw(1).raft.leadTransferee).toBe(3);
    c.tickAll(11);
    expect(c.raw(1).raft.leadTransferee).toBe(0);
    expect(() => c.propose(1, 'b')).not.toThrow();
    c.heal();
    c.raw(1).transferLeadership(3);
    c.stabilize();
    expect(c.leaders()).toEqual([3]);
    expect(c.appliedTexts(3)).toEqual(['a', 'b']);
  });
});

describe('membership changes (§4)', () => {
  it('adds a learner, catches it up, promotes it, then it counts toward the quorum', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.stabilize();
    c.addNode(4, { voters: [], learners: [] });
    c.raw(1).proposeConfChange({ type: 'add-learner', nodeId: 4 });
    c.stabilize();
    c.tickAll(3);
    expect(c.raw(1).status().conf).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.appliedTexts(4)).toEqual(['a']);
    expect(c.raw(4).raft.trk.isVoter(4)).toBe(false);
    c.raw(1).proposeConfChange({ type: 'promote', nodeId: 4 });
    c.stabilize();
    expect(c.raw(4).status().conf.voters).toEqual([1, 2, 3, 4]);
    // Now 3 of 4 voters are needed: with 2 and 3 down, nothing commits.
    c.isolate(2);
    c.isolate(3);
    c.propose(1, 'b');
    c.stabilize();
    expect(c.appliedTexts(1)).toEqual(['a']);
    c.heal();
    c.tickAll(2);
    expect(c.appliedTexts(4)).toEqual(['a', 'b']);
  });

  it('refuses a second change while one is pending, and an unready promotion', () => {
    const c = new TestCluster([1, 2, 3], { maxLearnerLag: 0 });
    c.elect(1);
    c.stabilize();
    c.isolate(2);
    c.isolate(3);
    c.raw(1).proposeConfChange({ type: 'add-learner', nodeId: 4 });
    expect(() => c.raw(1).proposeConfChange({ type: 'add-learner', nodeId: 5 })).toThrow(
      expect.objectContaining({ reason: 'conf-change-pending' }),
    );
    c.heal();
    c.stabilize();
    expect(() => c.raw(1).proposeConfChange({ type: 'promote', nodeId: 4 })).toThrow(
      expect.objectContaining({ reason: 'learner-not-caught-up' }),
    );
  });

  it('applies a change when appended, and falls back if the entry is truncated (§4.1)', () => {
    const follower = nodeWithLog(2, [1, 2, 3], [entry(1, 1)], 1);
    const cc: Entry = {
      index: 2,
      term: 1,
      kind: 'conf-change',
      data: encodeConfChange({
        change: { type: 'remove', nodeId: 3 },
        conf: { voters: [1, 2], learners: [] },
      }),
    };
    follower.step({
      type: 'append',
      from: 1,
      to: 2,
      term: 1,
      prevLogIndex: 1,
      prevLogTerm: 1,
      entries: [cc],
      commit: 1,
    });
    expect(follower.status().conf.voters).toEqual([1, 2]);
    persist(follower, storageOf(follower));
    follower.step({
      type: 'append',
      from: 3,
      to: 2,
      term: 2,
      prevLogIndex: 1,
      prevLogTerm: 1,
      entries: [entry(2, 2)],
      commit: 1,
    });
    expect(follower.status().conf.voters).toEqual([1, 2, 3]);
  });

  it('removes the leader: it keeps leading until the removal commits, then steps down', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.stabilize();
    c.raw(1).proposeConfChange({ type: 'remove', nodeId: 1 });
    c.stabilize();
    c.tickAll(25);
    expect(c.raw(1).isLeader()).toBe(false);
    const leader = c.leaders()[0];
    expect(leader === 2 || leader === 3).toBe(true);
    if (leader === undefined) return;
    expect(c.raw(leader).status().conf.voters).toEqual([2, 3]);
    c.propose(leader, 'after');
    c.stabilize();
    expect(c.appliedTexts(leader)).toEqual(['after']);
    // The removed node does not campaign.
    c.tickAll(50);
    expect(c.raw(1).raft.term).toBeLessThanOrEqual(c.raw(leader).raft.term);
    expect(c.raw(1).isLeader()).toBe(false);
  });
});

describe('uncommitted entry limit (etcd MaxUncommittedEntriesSize)', () => {
  const bytes = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill);
  const dropReason = (attempt: () => unknown): string | undefined => {
    try {
      attempt();
    } catch (error) {
      if (error instanceof ProposalDroppedError) return error.reason;
      throw error;
    }
    return undefined;
  };

  /** Node 1 leads a cluster of 3 whose followers are cut off: nothing commits any more. */
  function stalledLeader(limit: number): TestCluster {
    const c = new TestCluster([1, 2, 3], { maxUncommittedEntriesSize: limit });
    c.elect(1);
    c.stabilize();
    c.cutLink(1, 2);
    c.cutLink(1, 3);
    return c;
  }

  it('drops a proposal that would exceed the limit, appending nothing', () => {
    const c = stalledLeader(100);
    const raw = c.raw(1);
    expect(raw.status().uncommittedSize).toBe(0); // the leader's no-op is empty: not counted
    for (let i = 0; i < 10; i++) raw.propose(bytes(10));
    c.stabilize();
    expect(raw.status().uncommittedSize).toBe(100);
    const last = raw.status().lastIndex;
    expect(dropReason(() => raw.propose(bytes(1)))).toBe('uncommitted-limit');
    // A batch is refused as a whole.
    expect(dropReason(() => raw.propose(bytes(0), bytes(1)))).toBe('uncommitted-limit');
    // Membership changes count too (their entry carries the encoded configuration).
    expect(dropReason(() => raw.proposeConfChange({ type: 'add-learner', nodeId: 4 }))).toBe(
      'uncommitted-limit',
    );
    expect(raw.status().lastIndex).toBe(last);
    expect(raw.status().uncommittedSize).toBe(100);
  });

  it('frees the budget as entries are applied (not merely committed)', () => {
    // A single voter commits as soon as its own append is durable: no network needed.
    const storage = new MemoryStorage({ conf: { voters: [1], learners: [] } });
    const raw = new RawNode({ id: 1, storage, maxUncommittedEntriesSize: 100 });
    raw.campaign();
    persist(raw, storage);
    persist(raw, storage); // applies the no-op
    raw.propose(bytes(60));
    persist(raw, storage); // durable → committed by the leader's own vote, not yet applied
    expect(raw.status().commit).toBe(raw.status().lastIndex);
    expect(raw.status().applied).toBeLessThan(raw.status().commit);
    expect(dropReason(() => raw.propose(bytes(60)))).toBe('uncommitted-limit');
    const rd = persist(raw, storage); // hands the entry out for applying, then advances
    expect(rd.committedEntries.map((e) => e.data.length)).toEqual([60]);
    expect(raw.status().uncommittedSize).toBe(0);
    raw.propose(bytes(60));
    expect(raw.status().uncommittedSize).toBe(60);
  });

  it('accepts once the stalled followers catch up and the entries apply', () => {
    const c = stalledLeader(100);
    for (let i = 0; i < 10; i++) c.raw(1).propose(bytes(10));
    expect(dropReason(() => c.raw(1).propose(bytes(10)))).toBe('uncommitted-limit');
    c.heal();
    c.tickAll(2); // heartbeats find the followers' gap; the entries commit and apply
    expect(c.raw(1).status().applied).toBe(c.raw(1).status().lastIndex);
    expect(c.raw(1).status().uncommittedSize).toBe(0);
    expect(dropReason(() => c.raw(1).propose(bytes(100)))).toBeUndefined();
  });

  it('accepts one entry larger than the limit when nothing is uncommitted', () => {
    const c = stalledLeader(100);
    const raw = c.raw(1);
    expect(dropReason(() => raw.propose(bytes(500)))).toBeUndefined();
    expect(raw.status().uncommittedSize).toBe(500);
    expect(dropReason(() => raw.propose(bytes(1)))).toBe('uncommitted-limit');
    // Even beyond the limit, an empty payload is never refused (etcd: a new leader's no-op
    // must always get in).
    expect(dropReason(() => raw.propose(new Uint8Array(0)))).toBeUndefined();
  });

  it('0 means no limit', () => {
    const c = stalledLeader(0);
    for (let i = 0; i < 100; i++) c.raw(1).propose(bytes(1024));
    expect(c.raw(1).status().uncommittedSize).toBe(100 * 1024);
  });

  it('resets the count on a role change: a deposed leader leaks nothing into its next term', () => {
    // Without check-quorum's lease, 3 votes for 2 at once (the reset does not depend on it).
    const c = new TestCluster([1, 2, 3], {
      maxUncommittedEntriesSize: 100,
      checkQuorum: false,
      preVote: false,
    });
    c.elect(1);
    c.stabilize();
    c.isolate(1);
    for (let i = 0; i < 10; i++) c.raw(1).propose(bytes(10)); // never committed
    c.stabilize();
    expect(c.raw(1).status().uncommittedSize).toBe(100);
    // 2 and 3 elect 2 (1 is cut off), which commits an entry of its own.
    c.raw(2).campaign();
    c.stabilize();
    expect(c.leaders()).toContain(2);
    expect(c.raw(2).status().uncommittedSize).toBe(0);
    c.raw(2).propose(bytes(10, 2));
    c.stabilize();
    // 1 learns the new term, steps down (count reset) and has its entries replaced.
    c.heal();
    c.tickAll(3);
    expect(c.leaders()).toEqual([2]);
    expect(c.raw(1).status().uncommittedSize).toBe(0);
    // 1 leads again: its budget starts from 0, not from the entries it lost.
    c.raw(2).transferLeadership(1);
    c.stabilize();
    expect(c.leaders()).toEqual([1]);
    expect(c.raw(1).status().uncommittedSize).toBe(0);
    c.cutLink(1, 2);
    c.cutLink(1, 3);
    for (let i = 0; i < 10; i++) c.raw(1).propose(bytes(10, 3));
    expect(c.raw(1).status().uncommittedSize).toBe(100);
  });

  it('rejects a negative or fractional limit', () => {
    const storage = new MemoryStorage({ conf: { voters: [1], learners: [] } });
    expect(() => new RawNode({ id: 1, storage, maxUncommittedEntriesSize: -1 })).toThrow(
      /maxUncommittedEntriesSize/,
    );
    expect(() => new RawNode({ id: 1, storage, maxUncommittedEntriesSize: 1.5 })).toThrow(
      RangeError,
    );
  });
});
