import type { Request, Response } from 'express';
import { readQuerySchema } from '@dmq/api-contracts';
import type { MetadataApi, ReadOptions } from '../ports';
import { clientSignal } from '../request-context';
import { parseOrThrow } from '../validate';

/** Parses `?consistency=` / `?minVersion=` and waits until the read may be served locally. */
export async function readBarrier(api: MetadataApi, req: Request, res: Response): Promise<void> {
  const query = parseOrThrow(readQuerySchema, req.query, 'query');
  const options: ReadOptions = {
    consistency: query.consistency ?? 'linearizable',
    ...(query.minVersion === undefined ? {} : { minVersion: query.minVersion }),
    signal: clientSignal(req, res),
  };
  await api.readBarrier(options);
}

/** The request body, or `{}` when none was sent. */
export function bodyOf(req: Request): unknown {
  return req.body === undefined ? {} : req.body;
}
