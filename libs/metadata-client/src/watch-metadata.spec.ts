import { MetadataApiError } from './errors';
import type { RecordedRequest, Reply } from './fake-node.test-util';
import {
  FakeNode,
  errorBody,
  metadataFixture,
  recordingSleep,
  stopAll,
} from './fake-node.test-util';
import { MetadataClient } from './metadata-client';
import type { MetadataClientOptions } from './options';

/**
 * The replicated metadata version every fake node serves: `GET /metadata?sinceVersion=n`
 * is held until the version passes `n` (the contract's long-poll), without a timer, so
 * tests decide when an answer comes.
 */
class LongPollState {
  private waiting: (() => void)[] = [];
  constructor(public version: number) {}

  bump(): void {
    this.version += 1;
    for (const wake of this.waiting.splice(0)) wake();
  }

  readonly handler = async (request: RecordedRequest): Promise<Reply> => {
    if (request.path !== '/api/v1/metadata') return { status: 404, body: errorBody('NOT_FOUND') };
    const since = request.query['sinceVersion'];
    while (since !== undefined && this.version <= Number(since)) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    return {
      status: 200,
      body: metadataFixture(this.version),
      headers: { 'x-dmq-metadata-version': String(this.version) },
    };
  };
}

describe('MetadataClient.watchMetadata', () => {
  const nodes: FakeNode[] = [];
  const clients: MetadataClient[] = [];

  async function node(handler: (request: RecordedRequest) => Reply | Promise<Reply>) {
    const started = await FakeNode.start(handler);
    nodes.push(started);
    return started;
  }
  function client(options: MetadataClientOptions): MetadataClient {
    const made = new MetadataClient({
      random: () => 0.5,
      sleep: recordingSleep().sleep,
      ...options,
    });
    clients.push(made);
    return made;
  }

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await stopAll(nodes.splice(0));
  });

  it('yields each new version in order across a node failure and a restart', async () => {
    const state = new LongPollState(1);
    const one = await node(state.handler);
    const two = await node(state.handler);
    const c = client({ nodes: [one.address, two.address], watchWaitMs: 30_000 });
    const watch = c.watchMetadata();
    const versions: number[] = [];
    const next = async () => {
      const step = await watch.next();
      if (step.done) throw new Error('watch ended');
      versions.push(step.value.version);
    };

    await next(); // the current image, at once
    let pending = next();
    expect((await one.nextRequest()).query).toEqual({});
    expect((await one.nextRequest()).query).toEqual({ sinceVersion: '1', waitMs: '30000' });
    state.bump();
    await pending;

    pending = next();
    await one.nextRequest(); // held on node 1 …
    await one.stop(); // … which dies
    expect((await two.nextRequest()).query).toEqual({ sinceVersion: '2', waitMs: '30000' });
    state.bump();
    await pending;

    await one.restart();
    pending = next();
    await two.nextRequest();
    await two.stop();
    expect((await one.nextRequest()).query).toMatchObject({ sinceVersion: '3' });
    state.bump();
    await pending;

    expect(versions).toEqual([1, 2, 3, 4]);
    await watch.return();
  });

  it('starts after sinceVersion and keeps polling through 503s', async () => {
    const state = new LongPollState(7);
    let refusals = 3;
    const one = await node((request) =>
      refusals-- > 0 ? { status: 503, body: errorBody('NO_LEADER') } : state.handler(request),
    );
    const c = client({ nodes: [one.address], maxAttempts: 2 });
    const watch = c.watchMetadata({ sinceVersion: 7 });
    const first = watch.next();
    for (let i = 0; i < 4; i += 1) await one.nextRequest();
    state.bump();
    await expect(first).resolves.toMatchObject({ done: false, value: { version: 8 } });
    expect(one.requests.map((r) => r.query['sinceVersion'])).toEqual(['7', '7', '7', '7']);
    await watch.return();
  });

  it('ends without an error when the signal fires during a long-poll', async () => {
    const state = new LongPollState(1);
    const one = await node(state.handler);
    const c = client({ nodes: [one.address] });
    const controller = new AbortController();
    const watch = c.watchMetadata({ sinceVersion: 1, signal: controller.signal });
    const step = watch.next();
    await one.nextRequest();
    controller.abort();
    await expect(step).resolves.toEqual({ done: true, value: undefined });
    expect(one.requests).toHaveLength(1);
  });

  it('ends when the client closes', async () => {
    const state = new LongPollState(1);
    const one = await node(state.handler);
    const c = client({ nodes: [one.address] });
    const step = c.watchMetadata({ sinceVersion: 1 }).next();
    await one.nextRequest();
    await c.close();
    await expect(step).resolves.toEqual({ done: true, value: undefined });
  });

  it('stops polling when the consumer breaks out of for-await', async () => {
    const state = new LongPollState(3);
    const one = await node(state.handler);
    const c = client({ nodes: [one.address] });
    for await (const metadata of c.watchMetadata()) {
      expect(metadata.version).toBe(3);
      break;
    }
    expect(one.requests).toHaveLength(1);
  });

  it('backs off instead of busy-looping on early answers without news', async () => {
    const one = await node(() => ({ status: 200, body: metadataFixture(5) }));
    const controller = new AbortController();
    const delays: number[] = [];
    const c = client({
      nodes: [one.address],
      initialBackoffMs: 100,
      maxBackoffMs: 800,
      sleep: async (ms) => {
        delays.push(ms);
        if (delays.length === 6) controller.abort();
      },
    });
    const yielded: number[] = [];
    for await (const metadata of c.watchMetadata({
      sinceVersion: 5,
      waitMs: 10_000,
      signal: controller.signal,
    })) {
      yielded.push(metadata.version);
    }
    expect(yielded).toEqual([]);
    expect(one.requests).toHaveLength(6);
    // Growing, jittered (random = 0.5), never below initialBackoffMs.
    expect(delays).toEqual([100, 100, 200, 400, 400, 400]);
  });

  it('re-polls at once after a long-poll that waited its full waitMs', async () => {
    const state = new LongPollState(2);
    let polls = 0;
    const one = await node(async (request) => {
      polls += 1;
      if (polls <= 2) {
        // The server's waitMs passes without news.
        await new Promise((resolve) => setTimeout(resolve, Number(request.query['waitMs'])));
        return { status: 200, body: metadataFixture(2) };
      }
      state.bump();
      return state.handler(request);
    });
    const sleeper = recordingSleep();
    const c = client({ nodes: [one.address], sleep: sleeper.sleep });
    const watch = c.watchMetadata({ sinceVersion: 2, waitMs: 10 });
    await expect(watch.next()).resolves.toMatchObject({ value: { version: 3 } });
    expect(one.requests).toHaveLength(3);
    expect(sleeper.delays).toEqual([]);
    await watch.return();
  });

  it('throws what retrying cannot fix', async () => {
    const one = await node(() => ({ status: 401, body: errorBody('UNAUTHORIZED') }));
    const c = client({ nodes: [one.address] });
    const watch = c.watchMetadata();
    const error = await watch.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MetadataApiError);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
  });
});
