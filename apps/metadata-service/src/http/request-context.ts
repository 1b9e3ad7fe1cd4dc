import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { ErrorCode, Headers, idempotencyKeySchema } from '@dmq/api-contracts';
import { ApiError } from './api-error';
import type { WriteOptions } from './ports';

/** JSON with object keys sorted, so equal bodies hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** An AbortSignal that fires when the client disconnects before the answer is sent. */
export function clientSignal(req: Request, res: Response): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'));
  });
  req.on('aborted', () => controller.abort(new Error('client aborted')));
  return controller.signal;
}

/** Builds the idempotency identity of a write from its method, path and parsed body. */
export function writeOptions(req: Request, res: Response, body: unknown): WriteOptions {
  const header = req.get(Headers.idempotencyKey);
  let idempotencyKey: string | undefined;
  if (header !== undefined) {
    const parsed = idempotencyKeySchema.safeParse(header);
    if (!parsed.success) {
      throw new ApiError(
        ErrorCode.INVALID_REQUEST,
        `invalid Idempotency-Key header: ${parsed.error.issues[0]?.message ?? 'malformed'}`,
      );
    }
    idempotencyKey = parsed.data;
  }
  const requestHash = createHash('sha256')
    .update(`${req.method} ${req.baseUrl}${req.path}\n${canonicalJson(body ?? null)}`)
    .digest('hex');
  return {
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    requestHash,
    signal: clientSignal(req, res),
  };
}
