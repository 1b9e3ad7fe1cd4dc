/**
 * Fakes for tests of other libraries and the app (`@dmq/raft-core/testing`): an in-process
 * network, a manual clock, an in-memory state machine, and a cluster builder.
 */
export { MemoryNetwork } from './driver/memory-transport';
export { ManualClock, settle } from './driver/manual-clock';
export { MemoryStateMachine } from './driver/memory-state-machine';
export { MemorySnapshotStore } from './storage/memory-snapshot-store';
export { MemoryStorage } from './storage/memory-storage';
export { TestRaftCluster } from './driver/test-raft-cluster';
export type { TestRaftClusterOptions } from './driver/test-raft-cluster';
