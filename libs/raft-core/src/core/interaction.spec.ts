import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { TestCluster } from './cluster.test-util';
import type { Message } from './messages';

/**
 * Data-driven interaction tests (etcd-io/raft's `testdata/*.txt`): each block is a command,
 * `----`, and the exact trace it must produce (messages delivered, state asked for). Run with
 * `REWRITE=1` to regenerate the expected traces after an intended change, then review the diff.
 */
const dir = path.join(__dirname, 'testdata');
const rewrite = process.env['REWRITE'] === '1';

function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'vote-request':
      return `${head}${m.preVote ? ' pre-vote' : ''}${m.transfer ? ' transfer' : ''} last=${m.lastLogIndex}@${m.lastLogTerm}`;
    case 'vote-response':
      return `${head}${m.preVote ? ' pre-vote' : ''} ${m.granted ? 'granted' : 'rejected'}`;
    case 'append':
      return `${head} prev=${m.prevLogIndex}@${m.prevLogTerm} commit=${m.commit} entries=[${m.entries
        .map(
          (e) =>
            `${e.index}@${e.term}${e.kind === 'conf-change' ? ':conf' : e.data.length > 0 ? `:${new TextDecoder().decode(e.data)}` : ''}`,
        )
        .join(' ')}]`;
    case 'append-response':
      return `${head} ${m.success ? 'ok' : 'reject'} index=${m.index}${m.success ? '' : ` hint=${m.conflictIndex}@${m.conflictTerm}`}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}${m.context > 0 ? ` ctx=${m.context}` : ''}`;
    case 'heartbeat-response':
      return `${head}${m.context > 0 ? ` ctx=${m.context}` : ''}`;
    case 'log-lost':
      return `${head} last=${m.lastIndex}`;
    case 'snapshot-chunk':
      return `${head} snapshot=${m.snapshotIndex}@${m.snapshotTerm} offset=${m.offset}${m.done ? ' done' : ''}`;
    case 'snapshot-ack':
      return `${head} snapshot=${m.snapshotIndex} next=${m.nextOffset}${m.rejected ? ' rejected' : ''}`;
    case 'timeout-now':
      return head;
    case 'read-index':
      return `${head} ctx=${m.context}`;
    case 'read-index-response':
      return `${head} ctx=${m.context} index=${m.index}${m.rejected ? ' rejected' : ''}`;
  }
}

function run(
  cluster: TestCluster | undefined,
  line: string,
): { cluster: TestCluster; output: string[] } {
  const [command, ...args] = line.trim().split(/\s+/);
  const num = (i: number): number => Number(args[i]);
  if (command === 'add-nodes') {
    const ids = Array.from({ length: num(0) }, (_, i) => i + 1);
    const options: Record<string, boolean> = {};
    for (const flag of args.slice(1)) {
      const [key, value] = flag.split('=');
      if (key !== undefined) options[key] = value === 'true';
    }
    return { cluster: new TestCluster(ids, options), output: [] };
  }
  if (cluster === undefined) throw new Error('add-nodes first');
  const before = cluster.delivered.length;
  const output: string[] = [];
  switch (command) {
    case 'campaign':
      cluster.raw(num(0)).campaign();
      cluster.stabilize();
      break;
    case 'propose':
      cluster.propose(num(0), args[1] ?? '');
      cluster.stabilize();
      break;
    case 'tick':
      cluster.tick(num(0), num(1));
      cluster.stabilize();
      break;
    case 'isolate':
      cluster.isolate(num(0));
      break;
    case 'heal':
      cluster.heal();
      break;
    case 'transfer':
      cluster.raw(num(0)).transferLeadership(num(1));
      cluster.stabilize();
      break;
    case 'read':
      cluster.raw(num(0)).readIndex(num(1));
      cluster.stabilize();
      output.push(
        ...cluster
          .node(num(0))
          .readStates.splice(0)
          .map((r) => `read ctx=${r.context} index=${r.index}`),
      );
      break;
    case 'status':
      for (const id of args.length > 0 ? args.map(Number) : [...cluster.nodes.keys()]) {
        const s = cluster.raw(id).status();
        output.push(
          `${id}: ${s.role} term=${s.term} lead=${s.lead} commit=${s.commit} last=${s.lastIndex} voters=${s.conf.voters.join(',')}`,
        );
      }
      break;
    default:
      throw new Error(`unknown command ${String(command)}`);
  }
  return { cluster, output: [...cluster.delivered.slice(before).map(formatMessage), ...output] };
}

const files = readdirSync(dir).filter((f) => f.endsWith('.txt'));

describe.each(files)('interaction trace %s', (file) => {
  it('matches the recorded trace', () => {
    const text = readFileSync(path.join(dir, file), 'utf8');
    const blocks = text.split(/\n\n(?=[^\n-])/);
    let cluster: TestCluster | undefined;
    const rewritten: string[] = [];
    for (const block of blocks) {
      const [input = '', expected = ''] = block.split('\n----\n');
      const commands = input.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
      const output: string[] = [];
      for (const command of commands) {
        const result = run(cluster, command);
        cluster = result.cluster;
        output.push(...result.output);
      }
      const actual = output.length > 0 ? output.join('\n') : 'ok';
      rewritten.push(`${input}\n----\n${actual}`);
      if (!rewrite)
        expect(`${input}\n----\n${actual}`).toBe(`${input}\n----\n${expected.trimEnd()}`);
    }
    if (rewrite) writeFileSync(path.join(dir, file), `${rewritten.join('\n\n')}\n`);
  });
});
