/**
 * `npm run bench -- stale-read [--requests=5000]`
 *
 * Latency of `GET /api/v1/topics/{name}?consistency=stale` (served from the local state,
 * no Raft round trip) on a follower and on the leader of a 3-node cluster on loopback, one
 * request at a time over a keep-alive connection; a linearizable read (ReadIndex) for
 * comparison. Target: stale read p50 ≤ 1 ms.
 */
import http from 'node:http';
import { LocalCluster } from '../test/harness/local-cluster';
import { ms, numberFlag, quantile, table } from './bench-util';

const requests = numberFlag('requests', 5_000);

function get(agent: http.Agent, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve(0) : reject(new Error(`${res.statusCode}`)),
      );
    });
    req.on('error', reject);
  });
}

async function measure(port: number, path: string): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 200; i++) await get(agent, port, path); // warm-up (JIT, connection)
    const samples: number[] = [];
    for (let i = 0; i < requests; i++) {
      const started = process.hrtime.bigint();
      await get(agent, port, path);
      samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    return samples;
  } finally {
    agent.destroy();
  }
}

async function main(): Promise<void> {
  const cluster = await LocalCluster.start({ env: { DMQ_BROKER_SESSION_TIMEOUT_MS: '3600000' } });
  const client = cluster.client();
  try {
    const leader = await cluster.waitForLeader();
    for (const brokerId of [1, 2, 3])
      await client.registerBroker({ brokerId, host: '127.0.0.1', port: 9190 + brokerId });
    for (let i = 0; i < 100; i++)
      await client.createTopic({ name: `topic-${i}`, partitions: 6, replicationFactor: 3 });
    const follower = cluster.nodes.find((n) => n.id !== leader);
    if (follower === undefined) throw new Error('no follower');
    const rows = [];
    for (const [label, node, consistency] of [
      ['follower, stale', follower, 'stale'],
      ['leader, stale', cluster.node(leader), 'stale'],
      ['follower, linearizable', follower, 'linearizable'],
    ] as const) {
      const samples = await measure(
        node.port,
        `/api/v1/topics/topic-50?consistency=${consistency}`,
      );
      rows.push([
        label,
        ms(quantile(samples, 0.5), 3),
        ms(quantile(samples, 0.9), 3),
        ms(quantile(samples, 0.99), 3),
        ms(Math.max(...samples), 3),
      ]);
    }
    console.log(
      [
        '### Stale read latency — `npm run bench -- stale-read`',
        '',
        `One topic (6 partitions, RF 3) of 100, ${requests} sequential GETs over one keep-alive connection (ms, client-side, loopback).`,
        '',
        table(['read', 'p50', 'p90', 'p99', 'max'], rows),
      ].join('\n'),
    );
  } finally {
    await client.close();
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
