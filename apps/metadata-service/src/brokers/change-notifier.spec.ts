import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChangeNotifier } from './change-notifier';

interface Endpoint {
  url: string;
  bodies: Array<{ clusterId: string; version: number }>;
  maxConcurrent: number;
  close(): Promise<void>;
}

/** A broker push endpoint; `answer` decides each response's status. */
async function endpoint(answer: (n: number) => number, hold?: Promise<void>): Promise<Endpoint> {
  const bodies: Endpoint['bodies'] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  let count = 0;
  const server = http.createServer((req, res) => {
    concurrent += 1;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', async () => {
      if (hold !== undefined) await hold;
      bodies.push(JSON.parse(text) as { clusterId: string; version: number });
      count += 1;
      concurrent -= 1;
      res.statusCode = answer(count);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`,
    bodies,
    get maxConcurrent() {
      return maxConcurrent;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const logger = { debug: () => undefined, warn: () => undefined };

describe('ChangeNotifier', () => {
  it('pushes the newest version to each broker, coalescing a burst', async () => {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const broker = await endpoint(() => 204, hold);
    const notifier = new ChangeNotifier({ clusterId: 'c', logger });
    try {
      for (let v = 1; v <= 50; v++) notifier.notify(v, [{ brokerId: 1, url: broker.url }]);
      release();
      await notifier.idle();
      // The first notice was in flight while the burst came; the rest became one notice.
      expect(broker.bodies).toEqual([
        { clusterId: 'c', version: 1 },
        { clusterId: 'c', version: 50 },
      ]);
      expect(notifier.stats.sent).toBe(2);
    } finally {
      notifier.close();
      await broker.close();
    }
  });

  it('retries a failing broker with backoff and gives up after maxAttempts', async () => {
    const flaky = await endpoint((n) => (n < 3 ? 500 : 204));
    const dead = await endpoint(() => 503);
    const notifier = new ChangeNotifier({ clusterId: 'c', logger, backoffMs: 1, maxAttempts: 4 });
    try {
      notifier.notify(7, [
        { brokerId: 1, url: flaky.url },
        { brokerId: 2, url: dead.url },
      ]);
      await notifier.idle();
      expect(flaky.bodies.map((b) => b.version)).toEqual([7, 7, 7]);
      expect(dead.bodies).toHaveLength(4);
      expect(notifier.stats).toEqual({ sent: 1, failed: 6, abandoned: 1 });
    } finally {
      notifier.close();
      await flaky.close();
      await dead.close();
    }
  });

  it('keeps at most `concurrency` notices in flight and does not let a slow broker block the others', async () => {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const slow = await endpoint(() => 204, hold);
    const fast = await endpoint(() => 204);
    const notifier = new ChangeNotifier({ clusterId: 'c', logger, concurrency: 2 });
    try {
      notifier.notify(1, [
        { brokerId: 1, url: slow.url },
        { brokerId: 2, url: fast.url },
        { brokerId: 3, url: fast.url },
        { brokerId: 4, url: fast.url },
      ]);
      // With one slot held by the slow broker, the other three still get through.
      await new Promise<void>((resolve) => {
        const check = () => (fast.bodies.length === 3 ? resolve() : setImmediate(check));
        check();
      });
      expect(fast.maxConcurrent).toBeLessThanOrEqual(1);
      release();
      await notifier.idle();
      expect(slow.bodies).toHaveLength(1);
    } finally {
      notifier.close();
      await slow.close();
      await fast.close();
    }
  });
});
