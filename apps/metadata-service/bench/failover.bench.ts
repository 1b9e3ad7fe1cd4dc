/**
 * `npm run bench -- failover [--runs=20] [--steady-seconds=600]`
 *
 * A 3-node cluster of real processes on loopback with the default Raft timeouts
 * (heartbeat 50 ms, election timeout 250 ms randomized to [250, 500)).
 *
 * 1. Steady run: `--steady-seconds` of light load (writes and linearizable reads); counts
 *    spurious elections (term changes, pre-vote rounds) — there should be none.
 * 2. Failover, `--runs` times: kill -9 the leader, then measure until the first write is
 *    acknowledged on the new leader. The write loop here retries every 5 ms on every
 *    survivor and ignores `Retry-After`, so the figure is the server's, not a client's
 *    backoff policy. Server-side, from the nodes' logs: when a survivor started its
 *    pre-vote (failure detected) and when the new leader took office.
 * 3. Client-observed, in the same runs: a writer using `MetadataClient` with its default
 *    options (node ids known) issues writes back to back, one at a time, from before the
 *    kill until its first write acknowledged after it. The figure is the gap between its
 *    last acknowledgement before the kill and its first one after: what a producer sees,
 *    `Retry-After` and backoff included. Its retries (backoff sleeps) are counted too.
 */
import { MetadataClient } from '@dmq/metadata-client';
import { LocalCluster, pollUntil, type NodeProcess } from '../test/harness/local-cluster';
import { ms, numberFlag, quantile, sleep, table } from './bench-util';

const runs = numberFlag('runs', 20);
const steadySeconds = numberFlag('steady-seconds', 600);

const roleLine = (n: NodeProcess, from: number, roles: string[]) =>
  n.lines
    .slice(from)
    .filter((l) => l.msg === 'Raft role changed' && roles.includes(String(l['role'])));

async function steadyRun(cluster: LocalCluster, client: MetadataClient): Promise<string> {
  const from = new Map(cluster.nodes.map((n) => [n.id, n.lines.length]));
  const termsBefore = await Promise.all(
    cluster.nodes.map((n) => client.clusterStatus({ node: n.id })),
  );
  const until = Date.now() + steadySeconds * 1000;
  let writes = 0;
  let reads = 0;
  for (let i = 0; Date.now() < until; i++) {
    await client.createTopic({ name: `steady-${i}`, partitions: 1, replicationFactor: 1 });
    if (i % 200 === 199) await client.deleteTopic(`steady-${i - 100}`);
    await client.getTopic(`steady-${i}`);
    writes += 1;
    reads += 1;
    await sleep(20);
  }
  const termsAfter = await Promise.all(
    cluster.nodes.map((n) => client.clusterStatus({ node: n.id })),
  );
  const elections = cluster.nodes.map(
    (n) => roleLine(n, from.get(n.id) ?? 0, ['pre-candidate', 'candidate']).length,
  );
  return [
    `Steady run: ${steadySeconds} s, ${writes} writes and ${reads} linearizable reads.`,
    '',
    table(
      ['node', 'term before', 'term after', 'pre-vote/candidate transitions'],
      cluster.nodes.map((n, i) => [n.id, termsBefore[i]?.term, termsAfter[i]?.term, elections[i]]),
    ),
  ].join('\n');
}

/** Writes on every survivor every 5 ms until one is acknowledged; resolves with that time. */
async function firstAcknowledgedWrite(survivors: NodeProcess[], run: number): Promise<number> {
  let done = false;
  let attempt = 0;
  const loops = survivors.map(async (node) => {
    while (!done) {
      const name = `failover-${run}-${node.id}-${attempt++}`;
      try {
        const answer = await fetch(`${node.url}/api/v1/topics`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': name },
          body: JSON.stringify({ name, partitions: 1, replicationFactor: 1 }),
          signal: AbortSignal.timeout(5_000),
        });
        await answer.arrayBuffer();
        if (answer.status === 201) {
          done = true;
          return Date.now();
        }
      } catch {
        // refused, reset or timed out: try again
      }
      await sleep(5);
    }
    return Number.POSITIVE_INFINITY;
  });
  return Math.min(...(await Promise.all(loops)));
}

/** Pause of the client's backoff (an abortable `setTimeout`), recorded. */
interface Pause {
  readonly at: number;
  readonly ms: number;
}

/**
 * A producer as a user writes it: one `MetadataClient` with the default options, one write
 * at a time, back to back. Records when each write was acknowledged and every backoff pause.
 */
class ClientWriter {
  readonly acks: number[] = [];
  readonly pauses: Pause[] = [];
  readonly failures: string[] = [];
  private readonly client: MetadataClient;
  private stopped = false;
  private readonly loop: Promise<void>;
  private wake: (() => void) | undefined;

  constructor(nodes: readonly NodeProcess[], run: number) {
    this.client = new MetadataClient({
      nodes: nodes.map((n) => ({ id: n.id, address: n.address })),
      sleep: (ms, signal) => {
        this.pauses.push({ at: Date.now(), ms });
        return abortableSleep(ms, signal);
      },
    });
    this.loop = this.run(run);
  }

  /** Resolves once `count` writes were acknowledged after `since`. */
  async acknowledged(since: number, count = 1, timeoutMs = 30_000): Promise<number> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const after = this.acks.filter((t) => t > since);
      if (after.length >= count) return after[0] as number;
      if (Date.now() > until) throw new Error(`client writer: no ack within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.client.close();
  }

  private async run(run: number): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      try {
        await this.client.createTopic({
          name: `client-${run}-${i}`,
          partitions: 1,
          replicationFactor: 1,
        });
        this.acks.push(Date.now());
      } catch (err) {
        // The client gave up on a call (maxAttempts or deadline): a producer would see it.
        this.failures.push((err as Error).message);
      }
      this.wake?.();
    }
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function main(): Promise<void> {
  const cluster = await LocalCluster.start({
    env: { DMQ_BROKER_SESSION_TIMEOUT_MS: '3600000' },
  });
  const client = cluster.client();
  try {
    await cluster.waitForLeader();
    await client.registerBroker({ brokerId: 1, host: '127.0.0.1', port: 9191 });
    const steady = steadySeconds > 0 ? await steadyRun(cluster, client) : 'Steady run: skipped.';

    const rows: number[][] = [];
    const clientFailures: string[] = [];
    for (let run = 0; run < runs; run++) {
      const leader = await cluster.waitForLeader();
      // Every node caught up before the kill (a fair start).
      const { commitIndex } = await client.clusterStatus({ node: leader });
      await Promise.all(
        cluster.nodes.map((n) =>
          pollUntil(`node ${n.id} caught up`, async () => {
            const s = await client.clusterStatus({ node: n.id });
            return s.appliedIndex >= commitIndex ? true : undefined;
          }),
        ),
      );
      const from = new Map(cluster.nodes.map((n) => [n.id, n.lines.length]));
      const survivors = cluster.nodes.filter((n) => n.id !== leader);
      const writer = new ClientWriter(cluster.nodes, run);
      await writer.acknowledged(0, 5); // writing steadily to the leader before the kill
      const killedAt = Date.now();
      cluster.node(leader).child?.kill('SIGKILL');
      const ackAt = await firstAcknowledgedWrite(survivors, run);
      const clientAckAt = await writer.acknowledged(killedAt);
      await writer.stop();
      const lastAckBefore = Math.max(...writer.acks.filter((t) => t <= killedAt));
      const pausesInGap = writer.pauses.filter((p) => p.at > lastAckBefore && p.at < clientAckAt);
      clientFailures.push(...writer.failures);
      await cluster.node(leader).exited();
      const logged = async (roles: string[]) => {
        await pollUntil('log line', () =>
          survivors.some((n) => roleLine(n, from.get(n.id) ?? 0, roles).length > 0)
            ? true
            : undefined,
        );
        const times = survivors.flatMap((n) =>
          roleLine(n, from.get(n.id) ?? 0, roles).map((l) => Date.parse(String(l['time']))),
        );
        return Math.min(...times);
      };
      const detectedAt = await logged(['pre-candidate']);
      const electedAt = await logged(['leader']);
      rows.push([
        detectedAt - killedAt,
        electedAt - killedAt,
        ackAt - killedAt,
        clientAckAt - killedAt,
        clientAckAt - lastAckBefore,
        pausesInGap.length,
        pausesInGap.reduce((sum, p) => sum + p.ms, 0),
      ]);
      process.stderr.write(
        `run ${run + 1}/${runs}: server ${ackAt - killedAt} ms, client gap ` +
          `${clientAckAt - lastAckBefore} ms (${pausesInGap.length} retries: ` +
          `${pausesInGap.map((p) => p.ms).join(', ')} ms)\n`,
      );
      await cluster.node(leader).start();
    }
    const column = (i: number) => rows.map((r) => r[i] as number);
    const summary = (i: number) => [
      ms(quantile(column(i), 0.5)),
      ms(quantile(column(i), 0.9)),
      ms(quantile(column(i), 0.99)),
      ms(Math.max(...column(i))),
    ];
    console.log(
      [
        '### Failover — `npm run bench -- failover`',
        '',
        steady,
        '',
        `Failover: ${runs} runs of kill -9 on the leader (ms after the kill).`,
        '',
        table(
          ['milestone', 'p50', 'p90', 'p99', 'max'],
          [
            ['a survivor starts its pre-vote (failure detected)', ...summary(0)],
            ['the new leader takes office', ...summary(1)],
            ['first write acknowledged by the new leader', ...summary(2)],
            ['MetadataClient writer: first write acknowledged', ...summary(3)],
          ],
        ),
        '',
        'Client-observed: a `MetadataClient` with default options writing back to back; gap ' +
          'between its last acknowledgement before the kill and its first one after (ms), and ' +
          'its backoff pauses within that gap.',
        '',
        table(
          ['MetadataClient writer', 'p50', 'p90', 'p99', 'max'],
          [
            ['gap between acknowledgements (ms)', ...summary(4)],
            ['retries in the gap', ...summary(5)],
            ['time spent in backoff pauses (ms)', ...summary(6)],
          ],
        ),
        '',
        `Calls the client gave up on: ${clientFailures.length}` +
          (clientFailures.length === 0 ? '.' : ` (first: ${clientFailures[0]}).`) +
          ` Node log lines with MaxListenersExceededWarning: ${
            cluster.nodes.flatMap((n) =>
              n.lines.filter((l) => String(l.msg).includes('MaxListenersExceededWarning')),
            ).length
          }.`,
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
