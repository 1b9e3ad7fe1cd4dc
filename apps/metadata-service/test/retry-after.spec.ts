/**
 * `Retry-After` of `503 NO_LEADER` on a real 3-node cluster with the default Raft timeouts
 * (election timeout 250 ms, so the RetryAfterPolicy expects a leader for 1 s):
 * - during a failover (kill -9 of the leader) a survivor answers `Retry-After: 0`, so a
 *   client's own backoff, not a whole second, paces its retries;
 * - a node left without a quorum answers `0` at first, then `1` once it has had no leader
 *   for that long, so clients of a cluster that truly has no quorum do not hammer it.
 */
import { LocalCluster, type NodeProcess } from './harness/local-cluster';

jest.setTimeout(90_000);

/** 4 × the default election timeout (RetryAfterPolicy.settleMs). */
const SETTLE_MS = 1_000;

interface Answer {
  readonly at: number;
  readonly status: number;
  readonly code: string | undefined;
  readonly retryAfter: string | null;
}

async function write(node: NodeProcess, name: string): Promise<Answer> {
  const answer = await fetch(`${node.url}/api/v1/topics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': name },
    body: JSON.stringify({ name, partitions: 1, replicationFactor: 1 }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await answer.json()) as { error?: { code: string } };
  return {
    at: Date.now(),
    status: answer.status,
    code: body.error?.code,
    retryAfter: answer.headers.get('retry-after'),
  };
}

/** Writes to `node` every 5 ms until `until` says stop; returns every answer. */
async function writeUntil(
  node: NodeProcess,
  prefix: string,
  until: (answer: Answer) => boolean,
  timeoutMs: number,
): Promise<Answer[]> {
  const answers: Answer[] = [];
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; Date.now() < deadline; i++) {
    const answer = await write(node, `${prefix}-${i}`);
    answers.push(answer);
    if (until(answer)) return answers;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`${prefix}: condition not met within ${timeoutMs} ms`);
}

describe('Retry-After of 503 NO_LEADER', () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ env: { DMQ_BROKER_SESSION_TIMEOUT_MS: '600000' } });
    await cluster.waitForLeader();
    const client = cluster.client();
    try {
      // A broker the topics are placed on (its session outlives the test).
      await client.registerBroker({ brokerId: 1, host: '127.0.0.1', port: 9191 });
    } finally {
      await client.close();
    }
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('is 0 during a failover and becomes 1 once a node has had no leader for long', async () => {
    const leader = await cluster.waitForLeader();
    const [survivor, other] = cluster.nodes.filter((n) => n.id !== leader) as [
      NodeProcess,
      NodeProcess,
    ];
    expect((await write(survivor, 'before-kill')).status).toBe(201);

    // Failover: the survivor forwards to a dead leader, then holds an election.
    let killedAt = Date.now();
    await cluster.node(leader).kill('SIGKILL');
    const failover = await writeUntil(survivor, 'failover', (a) => a.status === 201, 20_000);
    const refusals = failover.filter((a) => a.status === 503);
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.every((a) => a.code === 'NO_LEADER')).toBe(true);
    expect(refusals[0]?.retryAfter).toBe('0');
    // Leaderless for less than SETTLE_MS throughout (it lost its leader after the kill).
    if ((failover.at(-1) as Answer).at - killedAt < SETTLE_MS) {
      expect(refusals.map((a) => a.retryAfter)).toEqual(refusals.map(() => '0'));
    }

    // No quorum: kill the new leader too; the lone survivor waits for a leader that cannot
    // come. `0` while an election may still succeed, then `1` for good.
    const newLeader = await cluster.waitForLeader(20_000, [leader]);
    const lone = newLeader === survivor.id ? other : survivor;
    killedAt = Date.now();
    await cluster.node(newLeader).kill('SIGKILL');
    const lost = await writeUntil(lone, 'no-quorum', (a) => a.retryAfter === '1', 10_000);
    const values = lost.map((a) => a.retryAfter);
    expect(lost.every((a) => a.status === 503 && a.code === 'NO_LEADER')).toBe(true);
    expect(values[0]).toBe('0');
    const firstOne = values.indexOf('1');
    expect(values.slice(0, firstOne).every((v) => v === '0')).toBe(true);
    expect((lost[firstOne] as Answer).at - killedAt).toBeGreaterThanOrEqual(SETTLE_MS);
    // It stays 1, for writes and for linearizable reads.
    expect((await write(lone, 'still-no-quorum')).retryAfter).toBe('1');
    const read = await fetch(`${lone.url}/api/v1/topics`, { signal: AbortSignal.timeout(10_000) });
    expect(read.status).toBe(503);
    expect(read.headers.get('retry-after')).toBe('1');

    await Promise.all([cluster.node(leader).start(), cluster.node(newLeader).start()]);
    await cluster.waitForLeader(30_000);
    expect((await write(lone, 'after-recovery')).status).toBe(201);
  });
});
