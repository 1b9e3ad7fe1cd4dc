import path from 'node:path';
import { ConfigError, configWarnings, loadConfig } from './config';

const base = {
  DMQ_NODE_ID: '2',
  DMQ_PEERS: '1=127.0.0.1:9091,2=127.0.0.1:9092,3=127.0.0.1:9093',
};

describe('loadConfig', () => {
  it('applies the contract defaults', () => {
    const config = loadConfig(base, '/srv/dmq');
    expect(config).toMatchObject({
      nodeId: 2,
      httpPort: 9092,
      httpHost: '0.0.0.0',
      dataDir: path.resolve('/srv/dmq/data/node-2'),
      clusterId: 'dmq-local',
      databaseUrl: 'postgresql://dmq_user:dmq_password@localhost:5432/dmq_metadata',
      redisUrl: 'redis://127.0.0.1:6379',
      backup: true,
      join: false,
      clusterSecret: undefined,
      apiToken: undefined,
      brokers: { sessionTimeoutMs: 9_000, heartbeatIntervalMs: 2_000 },
    });
    expect(config.peers.map((p) => p.id)).toEqual([1, 2, 3]);
  });

  it('takes every variable when given', () => {
    const config = loadConfig({
      ...base,
      DMQ_HTTP_PORT: '18080',
      DMQ_DATA_DIR: '/var/lib/dmq',
      DMQ_BACKUP: 'off',
      DMQ_JOIN: 'true',
      DMQ_CLUSTER_SECRET: 's3cret',
      DMQ_API_TOKEN: 'tok',
      DMQ_CLUSTER_ID: 'prod-eu',
      DATABASE_URL: 'postgresql://u:p@db:5432/x',
      REDIS_URL: 'redis://cache:6379',
      DMQ_RAFT_HEARTBEAT_MS: '100',
      DMQ_RAFT_ELECTION_TIMEOUT_MS: '1000',
    });
    expect(config).toMatchObject({
      httpPort: 18080,
      dataDir: '/var/lib/dmq',
      backup: false,
      join: true,
      clusterSecret: 's3cret',
      apiToken: 'tok',
      clusterId: 'prod-eu',
      raft: { heartbeatIntervalMs: 100, electionTimeoutMs: 1000 },
    });
  });

  it.each([
    [{}, /DMQ_NODE_ID/],
    [{ DMQ_NODE_ID: '1' }, /DMQ_PEERS/],
    [{ ...base, DMQ_NODE_ID: '4' }, /not one of the DMQ_PEERS ids \(1, 2, 3\)/],
    [{ ...base, DMQ_NODE_ID: 'two' }, /DMQ_NODE_ID: must be a whole number/],
    [{ ...base, DMQ_PEERS: '1=127.0.0.1' }, /DMQ_PEERS: "1=127.0.0.1"/],
    [{ ...base, DMQ_HTTP_PORT: '70000' }, /DMQ_HTTP_PORT/],
    [{ ...base, DMQ_BACKUP: 'maybe' }, /DMQ_BACKUP/],
    [{ ...base, DMQ_JOIN: 'yes' }, /DMQ_JOIN/],
    [{ ...base, DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be a postgresql/],
    [
      { ...base, DMQ_RAFT_HEARTBEAT_MS: '100', DMQ_RAFT_ELECTION_TIMEOUT_MS: '200' },
      /at least 3 ×/,
    ],
    [
      { ...base, DMQ_BROKER_SESSION_TIMEOUT_MS: '1000', DMQ_BROKER_HEARTBEAT_INTERVAL_MS: '1000' },
      /SESSION_TIMEOUT/,
    ],
  ])('refuses %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('lists every problem at once', () => {
    try {
      loadConfig({ DMQ_NODE_ID: 'x', DMQ_BACKUP: 'maybe' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.length).toBeGreaterThanOrEqual(3);
    }
  });

  it('reads the backup queue and the restore opt-in', () => {
    expect(loadConfig(base)).toMatchObject({ backupQueue: 'dmq-backup', restoreFromBackup: false });
    expect(
      loadConfig({ ...base, DMQ_BACKUP_QUEUE: 'dmq-backup-test_1', DMQ_RESTORE_FROM_BACKUP: 'on' }),
    ).toMatchObject({ backupQueue: 'dmq-backup-test_1', restoreFromBackup: true });
    expect(() => loadConfig({ ...base, DMQ_BACKUP_QUEUE: 'a:b' })).toThrow(/DMQ_BACKUP_QUEUE/);
    expect(() => loadConfig({ ...base, DMQ_RESTORE_FROM_BACKUP: 'yes' })).toThrow(
      /DMQ_RESTORE_FROM_BACKUP/,
    );
    expect(() => loadConfig({ ...base, DMQ_RESTORE_FROM_BACKUP: 'on', DMQ_BACKUP: 'off' })).toThrow(
      /needs DMQ_BACKUP=on/,
    );
  });

  it('warns about a dev-only setup', () => {
    const warnings = configWarnings(loadConfig(base));
    expect(warnings.join('\n')).toMatch(/DMQ_CLUSTER_SECRET is unset/);
    expect(
      configWarnings(loadConfig({ ...base, DMQ_CLUSTER_SECRET: 'x', DMQ_API_TOKEN: 'y' })),
    ).toEqual([]);
  });
});
