/**
 * `npm run bench -- event-loop [--seconds=30] [--writers=32] [--readers=8] [--pollers=16]`
 *
 * Loads a 3-node cluster (concurrent writes through the client, stale reads on every node,
 * metadata long-polls) and scrapes `dmq_event_loop_delay_seconds` from every node's
 * `/metrics` once a second (each scrape reports the worst stall since the previous one).
 * Target: the server never blocks its event loop for more than 50 ms under load.
 *
 * Caveat: the three nodes and this load generator share the machine's cores, so a "delay"
 * also includes time the OS did not schedule the process, not only time the loop was busy.
 */
import { MetadataClient } from '@dmq/metadata-client';
import { LocalCluster } from '../test/harness/local-cluster';
import { ms, numberFlag, quantile, sleep, table } from './bench-util';

const seconds = numberFlag('seconds', 30);
const writers = numberFlag('writers', 32);
const readers = numberFlag('readers', 8);
const pollers = numberFlag('pollers', 16);

function delays(body: string): { max: number; p99: number } {
  const value = (quantile: string) => {
    const match = new RegExp(
      `^dmq_event_loop_delay_seconds\\{[^}]*quantile="${quantile.replace('.', '\\.')}"[^}]*\\} (\\S+)$`,
      'm',
    ).exec(body);
    return match === null ? Number.NaN : Number(match[1]) * 1000;
  };
  return { max: value('max'), p99: value('0.99') };
}

async function main(): Promise<void> {
  const cluster = await LocalCluster.start({ env: { DMQ_BROKER_SESSION_TIMEOUT_MS: '3600000' } });
  const client = cluster.client();
  const abort = new AbortController();
  try {
    await cluster.waitForLeader();
    for (const brokerId of [1, 2, 3])
      await client.registerBroker({ brokerId, host: '127.0.0.1', port: 9190 + brokerId });
    const until = Date.now() + seconds * 1000;
    let written = 0;
    let read = 0;
    const scrapes = new Map<number, { max: number; p99: number }[]>(
      cluster.nodes.map((n) => [n.id, []]),
    );
    for (const n of cluster.nodes) await fetch(`${n.url}/metrics`).then((r) => r.text()); // new window
    const load = [
      ...Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; Date.now() < until; i++) {
          await client.createTopic({ name: `load-${w}-${i}`, partitions: 3, replicationFactor: 3 });
          written += 1;
        }
      }),
      ...Array.from({ length: readers }, async (_, r) => {
        const reader = cluster.client([cluster.nodes[r % cluster.nodes.length]?.id ?? 1]);
        try {
          while (Date.now() < until) {
            await reader.listTopics({ consistency: 'stale' });
            read += 1;
          }
        } finally {
          await reader.close();
        }
      }),
      ...Array.from({ length: pollers }, async () => {
        const poller = new MetadataClient({ nodes: cluster.peers });
        try {
          for await (const _ of poller.watchMetadata({ signal: abort.signal })) {
            if (Date.now() >= until) break;
          }
        } finally {
          await poller.close();
        }
      }),
      (async () => {
        while (Date.now() < until) {
          await sleep(1_000);
          for (const n of cluster.nodes) {
            const body = await (await fetch(`${n.url}/metrics`)).text();
            scrapes.get(n.id)?.push(delays(body));
          }
        }
        abort.abort();
      })(),
    ];
    await Promise.all(load);
    const rows = cluster.nodes.map((n) => {
      const s = scrapes.get(n.id) ?? [];
      return [
        n.id,
        s.length,
        ms(Math.max(...s.map((x) => x.max)), 1),
        ms(
          quantile(
            s.map((x) => x.max),
            0.5,
          ),
          1,
        ),
        ms(Math.max(...s.map((x) => x.p99)), 1),
      ];
    });
    console.log(
      [
        '### Event loop delay under load — `npm run bench -- event-loop`',
        '',
        `${seconds} s: ${writers} concurrent writers (CreateTopic, 3 partitions, RF 3), ${readers} stale readers (list all topics), ${pollers} metadata long-polls.`,
        `${written} writes (${Math.round(written / seconds)}/s), ${read} stale reads (${Math.round(read / seconds)}/s); ${written} topics at the end.`,
        '',
        table(
          [
            'node',
            'scrapes',
            'worst stall (ms)',
            'median per-second max (ms)',
            'worst per-second p99 (ms)',
          ],
          rows,
        ),
      ].join('\n'),
    );
  } finally {
    abort.abort();
    await client.close();
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
