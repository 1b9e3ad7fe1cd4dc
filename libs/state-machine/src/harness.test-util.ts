import type { ErrorCode } from '@dmq/api-contracts';
import type { ApplyResult } from './apply-result';
import type { Command } from './commands';
import { MetadataStateMachine, type MetadataStateMachineOptions } from './metadata-state-machine';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A command without its timestamp: the harness stamps it. */
export type TestCommand = DistributiveOmit<Command, 'timestampMs'> & { timestampMs?: number };

export const T0 = 1_700_000_000_000;

/** Drives a state machine as Raft would: increasing indexes, a clock the test moves. */
export class Harness {
  readonly sm: MetadataStateMachine;
  index = 0;
  now = T0;

  constructor(options?: MetadataStateMachineOptions) {
    this.sm = new MetadataStateMachine(options);
  }

  run(command: TestCommand): ApplyResult {
    this.index++;
    return this.sm.apply(this.index, { timestampMs: this.now, ...command } as Command);
  }

  /** Runs a command that must succeed and returns its value. */
  ok<V = unknown>(command: TestCommand): V {
    const result = this.run(command);
    if (!result.ok) {
      throw new Error(`${command.type} rejected: ${result.error.code} ${result.error.message}`);
    }
    return result.value as V;
  }

  /** Runs a command that must be rejected with `code` and checks that nothing changed. */
  rejected(command: TestCommand, code: ErrorCode): string {
    const before = this.stateText();
    const result = this.run(command);
    if (result.ok) throw new Error(`${command.type} accepted, expected ${code}`);
    expect(result.error.code).toBe(code);
    expect(this.stateText()).toBe(before);
    return result.error.message;
  }

  register(brokerId: number, rack?: string): number {
    const value = this.ok<{ brokerEpoch: number }>({
      type: 'RegisterBroker',
      brokerId,
      host: `broker-${brokerId}.local`,
      port: 9000 + brokerId,
      ...(rack === undefined ? {} : { rack }),
    });
    return value.brokerEpoch;
  }

  createTopic(name: string, partitions: number, replicationFactor: number, config = {}): void {
    this.ok({ type: 'CreateTopic', name, partitions, replicationFactor, config });
  }

  epochOf(brokerId: number): number {
    const broker = this.sm.broker(brokerId);
    if (broker === undefined) throw new Error(`no broker ${brokerId}`);
    return broker.brokerEpoch;
  }

  /** Partition `p` of `topic` (must exist). */
  part(topic: string, p = 0) {
    const info = this.sm.partition(topic, p);
    if (info === undefined) throw new Error(`no partition ${topic}-${p}`);
    return info;
  }

  /** The partitions of `topic` (must exist). */
  parts(topic: string) {
    const list = this.sm.partitions(topic);
    if (list === undefined) throw new Error(`no topic ${topic}`);
    return list;
  }

  snapshotText(): string {
    return snapshotText(this.sm);
  }

  /** The snapshot without the version and the trailer: equal iff the states are equal. */
  stateText(): string {
    return stateText(this.sm);
  }
}

export function snapshotText(sm: MetadataStateMachine): string {
  const decoder = new TextDecoder();
  let text = '';
  for (const chunk of sm.snapshot()) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

export function stateText(sm: MetadataStateMachine): string {
  return snapshotText(sm)
    .replace(/"version":\d+,/, '')
    .replace(/\{"t":"end".*\n$/, '');
}

/** `list[i]`, which must exist. */
export function at<T>(list: readonly T[], i: number): T {
  const item = list[i];
  if (item === undefined) throw new Error(`no item ${i} in a list of ${list.length}`);
  return item;
}

/** `value`, which must be defined. */
export function defined<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('undefined');
  return value;
}
