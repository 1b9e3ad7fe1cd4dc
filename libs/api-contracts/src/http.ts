import { z } from 'zod';

/** Base path of every API route. */
export const API_BASE_PATH = '/api/v1';

/** Header names of the contract (lower-case, as Node exposes them). */
export const Headers = {
  /** Id of the leader this node knows, on every answer when one is known. */
  leader: 'x-dmq-leader',
  /** Raft index of the state an answer reflects, on every answer. */
  metadataVersion: 'x-dmq-metadata-version',
  idempotencyKey: 'idempotency-key',
  retryAfter: 'retry-after',
  authorization: 'authorization',
  /** Set on requests a follower forwards to the leader (loop protection). */
  forwardedBy: 'x-dmq-forwarded-by',
} as const;

/** `Idempotency-Key`: 1..128 printable ASCII characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
export const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(MAX_IDEMPOTENCY_KEY_LENGTH)
  .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' });

/** Largest request body the API accepts (a 413 above it). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** How long an idempotency key is honoured at least (contract: ≥ 10 minutes). */
export const IDEMPOTENCY_KEY_TTL_MS = 15 * 60 * 1000;
