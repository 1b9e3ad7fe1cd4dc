import { InvalidArgumentError } from './errors';
import { MetadataClient } from './metadata-client';
import type { MetadataClientOptions } from './options';
import { resolveNodes, resolveOptions } from './options';

describe('client options', () => {
  it('reads a DMQ_PEERS string as nodes with ids', () => {
    const nodes = resolveNodes('2=10.0.0.2:9092, 1=[::1]:9091');
    expect(nodes.map((n) => [n.id, n.apiBase.href])).toEqual([
      [1, 'http://[::1]:9091/api/v1'],
      [2, 'http://10.0.0.2:9092/api/v1'],
    ]);
  });

  it('reads addresses and base URLs without ids', () => {
    const nodes = resolveNodes('10.0.0.1:9091,https://meta.example.com/dmq/');
    expect(nodes.map((n) => [n.id, n.apiBase.href])).toEqual([
      [undefined, 'http://10.0.0.1:9091/api/v1'],
      [undefined, 'https://meta.example.com/dmq/api/v1'],
    ]);
    expect(nodes.map((n) => n.rootBase.href)).toEqual([
      'http://10.0.0.1:9091/',
      'https://meta.example.com/dmq',
    ]);
  });

  it('spreads the defaults under the given options', () => {
    const options = resolveOptions({ nodes: ['127.0.0.1:1'], maxAttempts: 2 });
    expect(options).toMatchObject({ maxAttempts: 2, deadlineMs: 30_000, keepAlive: true });
    expect(options.token).toBeUndefined();
  });

  it.each<[string, MetadataClientOptions, string]>([
    ['no nodes', { nodes: [] }, 'at least one'],
    ['a bad address', { nodes: ['localhost'] }, '"localhost" must be host:port'],
    ['a bad port', { nodes: ['h:70000'] }, 'must be host:port'],
    ['a URL with a query', { nodes: ['http://h:1/?x=1'] }, 'without query'],
    ['a bad DMQ_PEERS entry', { nodes: '1=h:1,x=h:2' }, 'id must be a positive integer'],
    [
      'a duplicate id',
      {
        nodes: [
          { id: 1, address: 'a:1' },
          { id: 1, address: 'b:1' },
        ],
      },
      'id 1 appears twice',
    ],
    ['a duplicate address', { nodes: ['a:1', 'http://a:1'] }, 'appears twice'],
    ['a bad id', { nodes: [{ id: 0, address: 'a:1' }] }, 'positive integer'],
    [
      'a zero timeout',
      { nodes: ['a:1'], requestTimeoutMs: 0 },
      'requestTimeoutMs must be an integer >= 1',
    ],
    ['a fractional deadline', { nodes: ['a:1'], deadlineMs: 1.5 }, 'deadlineMs'],
    [
      'backoff bounds upside down',
      { nodes: ['a:1'], initialBackoffMs: 500, maxBackoffMs: 100 },
      'maxBackoffMs',
    ],
    ['a token with a space', { nodes: ['a:1'], token: 'a b' }, 'token'],
  ])('fails fast on %s', (_, options, message) => {
    expect(() => new MetadataClient(options)).toThrow(InvalidArgumentError);
    expect(() => new MetadataClient(options)).toThrow(message);
  });
});
