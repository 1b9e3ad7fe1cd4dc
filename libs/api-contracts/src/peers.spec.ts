import { formatPeers, parsePeers, PeerListError } from './peers';

describe('parsePeers', () => {
  it('parses the contract example, sorted by id', () => {
    expect(parsePeers('3=127.0.0.1:9093, 1=127.0.0.1:9091,2=127.0.0.1:9092')).toEqual([
      { id: 1, address: '127.0.0.1:9091', host: '127.0.0.1', port: 9091 },
      { id: 2, address: '127.0.0.1:9092', host: '127.0.0.1', port: 9092 },
      { id: 3, address: '127.0.0.1:9093', host: '127.0.0.1', port: 9093 },
    ]);
  });
  it('accepts host names and bracketed IPv6', () => {
    expect(parsePeers('1=meta-1.dmq:9091,2=[::1]:9092').map((p) => p.host)).toEqual([
      'meta-1.dmq',
      '::1',
    ]);
  });
  it.each([
    ['', /empty/],
    ['1=127.0.0.1', /host:port/],
    ['x=127.0.0.1:1', /positive integer/],
    ['0=127.0.0.1:1', /positive integer/],
    ['1=127.0.0.1:1,1=127.0.0.1:2', /appears twice/],
    ['1=127.0.0.1:99999', /host:port/],
    ['127.0.0.1:9091', /id=host:port/],
  ])('rejects %j with a clear message', (text, message) => {
    expect(() => parsePeers(text)).toThrow(PeerListError);
    expect(() => parsePeers(text)).toThrow(message);
  });
  it('round-trips through formatPeers', () => {
    const text = '1=127.0.0.1:9091,2=127.0.0.1:9092';
    expect(formatPeers(parsePeers(text))).toBe(text);
  });
});
