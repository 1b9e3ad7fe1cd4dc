import { ServiceMetrics, type RaftGaugeSource } from './metrics';

/** The value of the sample `name` whose labels include `labels` (any label order). */
function sample(body: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of body.split('\n')) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found = Object.fromEntries(
      (match[2] ?? '').split(',').map((pair) => {
        const [k, v] = pair.split('=');
        return [k, (v ?? '').replace(/^"|"$/g, '')];
      }),
    );
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe('ServiceMetrics', () => {
  it('samples Raft and backup state at scrape time', async () => {
    let raft: RaftGaugeSource = {
      term: 3,
      role: 'leader',
      commitIndex: 100,
      appliedIndex: 99,
      snapshotIndex: 50,
      uncommittedBytes: 4096,
      peers: [
        { id: 2, matchIndex: 100, lastContactMs: 12 },
        { id: 3, matchIndex: 90, lastContactMs: 2500 },
      ],
    };
    const metrics = new ServiceMetrics(
      1,
      () => raft,
      () => ({ lagEntries: 4, lagMs: 250 }),
      { defaultMetrics: false },
    );
    metrics.observeHttp('/api/v1/topics', 'POST', 201, 0.004);
    metrics.proposalSeconds.observe({ outcome: 'committed' }, 0.002);
    const { body, contentType } = await metrics.text();
    expect(contentType).toMatch(/text\/plain/);
    const node = { node: '1' };
    expect(sample(body, 'dmq_raft_term', node)).toBe(3);
    expect(sample(body, 'dmq_raft_role', { ...node, role: 'leader' })).toBe(1);
    expect(sample(body, 'dmq_raft_role', { ...node, role: 'follower' })).toBe(0);
    expect(sample(body, 'dmq_raft_uncommitted_bytes', node)).toBe(4096);
    expect(sample(body, 'dmq_raft_peer_lag_entries', { ...node, peer: '3' })).toBe(10);
    expect(sample(body, 'dmq_raft_peer_last_contact_seconds', { ...node, peer: '3' })).toBe(2.5);
    expect(sample(body, 'dmq_backup_lag_entries', node)).toBe(4);
    expect(sample(body, 'dmq_backup_lag_seconds', node)).toBe(0.25);
    expect(
      sample(body, 'dmq_http_request_seconds_count', {
        route: '/api/v1/topics',
        method: 'POST',
        status: '201',
      }),
    ).toBe(1);
    expect(sample(body, 'dmq_raft_proposal_seconds_count', { outcome: 'committed' })).toBe(1);

    raft = { ...raft, role: 'follower', term: 4, peers: [] };
    const later = (await metrics.text()).body;
    expect(sample(later, 'dmq_raft_term', node)).toBe(4);
    expect(sample(later, 'dmq_raft_role', { role: 'follower' })).toBe(1);
    expect(sample(later, 'dmq_raft_peer_lag_entries', { peer: '3' })).toBeUndefined();
    metrics.close();
  });

  it('reports the worst event loop stall since the previous scrape', async () => {
    const metrics = new ServiceMetrics(
      1,
      () => ({
        term: 1,
        role: 'follower',
        commitIndex: 0,
        appliedIndex: 0,
        snapshotIndex: 0,
        uncommittedBytes: 0,
        peers: [],
      }),
      () => ({ lagEntries: null, lagMs: null }),
      { defaultMetrics: false, eventLoopResolutionMs: 5 },
    );
    try {
      await metrics.text(); // starts a fresh window
      const blockedUntil = performance.now() + 120;
      while (performance.now() < blockedUntil) {
        // Block the loop on purpose: the stall being measured.
      }
      // The sampler's timer records the stall when it finally runs.
      await new Promise((resolve) => setTimeout(resolve, 30));
      const stalled = (await metrics.text()).body;
      expect(sample(stalled, 'dmq_event_loop_delay_seconds', { quantile: 'max' })).toBeGreaterThan(
        0.09,
      );
      // Scraping reset the window: the stall is not reported twice.
      await new Promise((resolve) => setTimeout(resolve, 30));
      const calm = (await metrics.text()).body;
      expect(sample(calm, 'dmq_event_loop_delay_seconds', { quantile: 'max' })).toBeLessThan(0.09);
    } finally {
      metrics.close();
    }
  });
});
