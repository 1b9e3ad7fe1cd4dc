import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** Refused start: the data directory belongs to another cluster. */
export class ClusterIdentityError extends Error {
  readonly code = 'config/cluster-id-mismatch';
  constructor(message: string) {
    super(message);
    this.name = 'ClusterIdentityError';
  }
}

const FILE = 'cluster.json';

/**
 * Binds a data directory to one cluster id and node id on first start and refuses to start
 * on a directory of another cluster or node later (a misconfigured DMQ_DATA_DIR would
 * otherwise replay a foreign log).
 */
export async function ensureClusterIdentity(
  dataDir: string,
  clusterId: string,
  nodeId: number,
): Promise<'created' | 'matched'> {
  await fsp.mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, FILE);
  let existing: { clusterId?: unknown; nodeId?: unknown } | undefined;
  try {
    existing = JSON.parse(await fsp.readFile(file, 'utf8')) as {
      clusterId?: unknown;
      nodeId?: unknown;
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existing === undefined) {
    const tmp = `${file}.tmp`;
    const handle = await fsp.open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify({ clusterId, nodeId }) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, file);
    const dir = await fsp.open(dataDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return 'created';
  }
  if (existing.clusterId !== clusterId || existing.nodeId !== nodeId) {
    throw new ClusterIdentityError(
      `${dataDir} belongs to node ${String(existing.nodeId)} of cluster "${String(existing.clusterId)}", ` +
        `not node ${nodeId} of cluster "${clusterId}": check DMQ_DATA_DIR, DMQ_NODE_ID and DMQ_CLUSTER_ID`,
    );
  }
  return 'matched';
}
