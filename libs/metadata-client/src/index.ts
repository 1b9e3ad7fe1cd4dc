/**
 * @packageDocumentation
 * `@dmq/metadata-client`: the typed client of the DMQ metadata service's HTTP API. It follows
 * the Raft leader, retries what is safe to retry with one `Idempotency-Key` per call,
 * validates every answer against `@dmq/api-contracts`, and watches metadata by long-poll.
 */
export { MetadataClient } from './metadata-client';
export type {
  AnswerInfo,
  CallOptions,
  GetMetadataOptions,
  NodeCallOptions,
  ReadOptions,
  WatchMetadataOptions,
  WriteOptions,
} from './metadata-client';
export { DEFAULT_CLIENT_OPTIONS } from './options';
export type { MetadataClientOptions, NodeAddress } from './options';
export {
  AbortError,
  ClientClosedError,
  ClientErrorCode,
  DeadlineExceededError,
  InvalidArgumentError,
  MetadataApiError,
  MetadataClientError,
  NoLeaderError,
  ProtocolError,
  TransportError,
  isMetadataApiError,
} from './errors';
export type { ApiErrorDetails, CallFacts } from './errors';
