import { Writable } from 'node:stream';
import { createLogger } from './logger';

describe('createLogger', () => {
  it('puts node id, term and role on every line', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString());
        callback();
      },
    });
    let raft = { term: 1, role: 'follower' };
    const logger = createLogger({ nodeId: 3, level: 'info', raft: () => raft, destination });
    logger.info({ index: 7 }, 'applied');
    raft = { term: 2, role: 'leader' };
    logger.child({ component: 'backup' }).warn('lagging');
    logger.debug('not written at info');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed).toHaveLength(2);
    expect(parsed[0]).toMatchObject({
      nodeId: 3,
      term: 1,
      role: 'follower',
      index: 7,
      msg: 'applied',
      level: 'info',
    });
    expect(parsed[1]).toMatchObject({
      nodeId: 3,
      term: 2,
      role: 'leader',
      component: 'backup',
      level: 'warn',
    });
  });
});
