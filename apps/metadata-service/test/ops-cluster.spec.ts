/**
 * Operations on a real 3-node cluster (issue #5): `/cluster`, leadership transfer (to a named
 * node and to the best one), snapshots, one-at-a-time membership changes with a node that
 * joins with `DMQ_JOIN=true`, and `/healthz`, `/readyz`, `/metrics`.
 */
import type { MetadataClient } from '@dmq/metadata-client';
import { LocalCluster, pollUntil } from './harness/local-cluster';

jest.setTimeout(60_000);

/** The value of the first sample of `name` whose labels include `labels`. */
function sample(
  body: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of body.split('\n')) {
    const match = /^([a-zA-Z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found = new Map(
      [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]] as const),
    );
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(match[3]);
  }
  return undefined;
}

describe('operating a 3-node cluster', () => {
  let cluster: LocalCluster;
  let client: MetadataClient;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ env: { DMQ_BROKER_SESSION_TIMEOUT_MS: '600000' } });
    client = cluster.client();
    await cluster.waitForLeader();
    await client.registerBroker({ brokerId: 1, host: '127.0.0.1', port: 9191 });
  });
  afterAll(async () => {
    await client.close();
    await cluster.stop();
  });

  it('GET /cluster tells every node its role, term, indexes and members', async () => {
    const leader = await cluster.waitForLeader();
    await client.createTopic({ name: 'status', partitions: 1, replicationFactor: 1 });
    const version = client.metadataVersion ?? 0;
    const statuses = await Promise.all(
      cluster.nodes.map((n) =>
        pollUntil(`node ${n.id} applied ${version}`, async () => {
          const s = await client.clusterStatus({ node: n.id });
          return s.appliedIndex >= version ? s : undefined;
        }),
      ),
    );
    for (const s of statuses) {
      expect(s).toMatchObject({
        clusterId: 'dmq-local',
        leaderId: leader,
        role: s.nodeId === leader ? 'leader' : 'follower',
        term: statuses[0]?.term,
      });
      expect(s.commitIndex).toBeGreaterThanOrEqual(s.appliedIndex);
      expect(s.members.map((m) => [m.id, m.address, m.voter])).toEqual(
        cluster.nodes.map((n) => [n.id, n.address, true]),
      );
      expect(s.backup.enabled).toBe(false);
    }
    // The leader learns each follower's match from its acknowledgements, which may still be
    // in flight when that follower already applied the entry: wait for them.
    const onLeader = await pollUntil(`leader sees every member at ${version}`, async () => {
      const s = await client.clusterStatus({ node: leader });
      return s.members.every((m) => (m.matchIndex ?? -1) >= version) ? s : undefined;
    });
    for (const m of onLeader.members) {
      expect(m.matchIndex).toBeGreaterThanOrEqual(version);
      expect(m.lastContactMs).toEqual(expect.any(Number));
    }
  });

  it('answers /healthz and /readyz on every node', async () => {
    for (const n of cluster.nodes) {
      expect(await client.healthz({ node: n.id })).toMatchObject({ status: 'ok' });
      expect(await client.readyz({ node: n.id })).toMatchObject({ status: 'ok' });
    }
  });

  it('exposes the required series on /metrics', async () => {
    const leader = await cluster.waitForLeader();
    await client.createTopic({ name: 'metered', partitions: 1, replicationFactor: 1 });
    const body = await (await fetch(`${cluster.node(leader).url}/metrics`)).text();
    const node = { node: String(leader) };
    expect(sample(body, 'dmq_raft_term', node)).toBeGreaterThan(0);
    expect(sample(body, 'dmq_raft_role', { ...node, role: 'leader' })).toBe(1);
    expect(sample(body, 'dmq_raft_commit_index', node)).toBeGreaterThan(0);
    expect(sample(body, 'dmq_raft_applied_index', node)).toBeGreaterThan(0);
    expect(
      sample(body, 'dmq_raft_proposal_seconds_count', { ...node, outcome: 'committed' }),
    ).toBeGreaterThan(0);
    expect(sample(body, 'dmq_raft_proposal_seconds_bucket', { le: '+Inf' })).toBeGreaterThan(0);
    expect(sample(body, 'dmq_raft_fsync_seconds_count', node)).toBeGreaterThan(0);
    for (const peer of cluster.nodes.filter((n) => n.id !== leader)) {
      expect(sample(body, 'dmq_raft_peer_match_index', { peer: String(peer.id) })).toBeGreaterThan(
        0,
      );
      expect(sample(body, 'dmq_raft_peer_lag_entries', { peer: String(peer.id) })).toEqual(
        expect.any(Number),
      );
    }
    expect(
      sample(body, 'dmq_http_request_seconds_count', {
        route: '/api/v1/topics',
        method: 'POST',
        status: '201',
      }),
    ).toBeGreaterThan(0);
    expect(sample(body, 'dmq_backup_lag_entries', node)).toBe(-1); // backup off: unknown
    expect(sample(body, 'dmq_backup_lag_seconds', node)).toBe(-1);
    expect(
      sample(body, 'dmq_event_loop_delay_seconds', { quantile: 'max' }),
    ).toBeGreaterThanOrEqual(0);
    expect(
      sample(body, 'dmq_event_loop_delay_seconds', { quantile: '0.99' }),
    ).toBeGreaterThanOrEqual(0);
  });

  it('transfers leadership to a named node, and to the best node without targetId', async () => {
    const leader = await cluster.waitForLeader();
    const target = cluster.nodes.find((n) => n.id !== leader)?.id ?? 0;
    const { term } = await client.clusterStatus({ node: leader });
    const named = await client.transferLeadership(target);
    expect(named).toEqual({ leaderId: target, term: term + 1 });
    expect(await cluster.waitForLeader()).toBe(target);

    const best = await client.transferLeadership();
    expect(best.leaderId).not.toBe(target);
    expect(best.term).toBe(term + 2);
    expect(await cluster.waitForLeader()).toBe(best.leaderId);
    // Writes go on at once through the new leader.
    await client.createTopic({ name: 'after-transfer', partitions: 1, replicationFactor: 1 });
  });

  it('takes a snapshot on the node asked', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.nodes.find((n) => n.id !== leader);
    if (follower === undefined) throw new Error('no follower');
    await client.createTopic({ name: 'snapshotted', partitions: 1, replicationFactor: 1 });
    const version = client.metadataVersion ?? 0;
    await pollUntil('the follower applied the write', async () => {
      const s = await client.clusterStatus({ node: follower.id });
      return s.appliedIndex >= version ? true : undefined;
    });
    const taken = await client.takeSnapshot({ node: follower.id });
    expect(taken.index).toBeGreaterThanOrEqual(version);
    expect(taken.bytes).toBeGreaterThan(0);
    expect((await client.clusterStatus({ node: follower.id })).snapshotIndex).toBe(taken.index);
  });

  it('adds a node started with DMQ_JOIN=true as a voter, then removes it', async () => {
    const joining = await cluster.startJoiningNode();
    // Before it is added it knows no configuration: it neither campaigns nor claims readiness.
    const direct = cluster.client([joining.id]);
    try {
      const alone = await direct.clusterStatus({ node: joining.id });
      expect(alone).toMatchObject({ role: 'follower', leaderId: null, members: [] });
      expect(await direct.readyz({ node: joining.id })).toMatchObject({ status: 'not-ready' });
    } finally {
      await direct.close();
    }

    // The documented procedure: every member learns the new node's address from its own
    // DMQ_PEERS (the contract's only source of addresses), by a rolling restart, before the
    // node is added. The restarts are graceful (SIGTERM): no election timeout is waited out.
    const peers = `${cluster.peers},${joining.id}=${joining.address}`;
    for (const n of cluster.nodes.filter((m) => m.id !== joining.id)) {
      expect(await n.kill('SIGTERM')).toBe(0);
      await n.start({ DMQ_PEERS: peers });
      await cluster.waitForLeader(20_000, [joining.id]);
    }
    const added = await client.addMember({ id: joining.id, address: joining.address });
    expect(added.members.map((m) => [m.id, m.voter])).toEqual([
      [1, true],
      [2, true],
      [3, true],
      [4, true],
    ]);
    const leader = await cluster.waitForLeader();
    const version = (await client.getMetadata()).version;
    const local = cluster.client([joining.id]);
    try {
      const topics = await local.listTopics({ consistency: 'stale', minVersion: version });
      expect(topics.map((t) => t.name)).toContain('snapshotted');
      // Conf-change entries do not move the metadata version: wait for the membership itself.
      const view = await pollUntil('the joining node applied its promotion', async () => {
        const status = await local.clusterStatus({ node: joining.id });
        return status.members.length === 4 ? status : undefined;
      });
      expect(view).toMatchObject({ leaderId: leader, role: 'follower' });
      expect(view.members.map((m) => [m.id, m.voter])).toEqual([
        [1, true],
        [2, true],
        [3, true],
        [4, true],
      ]);
    } finally {
      await local.close();
    }
    expect(
      joining.lines.filter((l) => l['role'] === 'pre-candidate' || l['role'] === 'candidate'),
    ).toEqual([]);
    // A four-voter cluster commits (quorum 3 of 4).
    await client.createTopic({ name: 'four-voters', partitions: 1, replicationFactor: 1 });

    const removed = await client.removeMember(joining.id);
    expect(removed.members.map((m) => m.id)).toEqual([1, 2, 3]);
    await joining.kill('SIGKILL');
    // Quorum is 2 of 3 again: a write commits without node 4.
    await client.createTopic({ name: 'three-voters', partitions: 1, replicationFactor: 1 });
    for (const id of [1, 2, 3]) {
      await pollUntil(`node ${id} applied the removal`, async () => {
        const status = await client.clusterStatus({ node: id });
        return status.members.map((m) => m.id).join() === '1,2,3' ? true : undefined;
      });
    }
  });
});
