import { formatIssues, ErrorCode } from '@dmq/api-contracts';
import type { z } from 'zod';
import { ApiError } from './api-error';

/** Parses `value` with `schema`, or throws a 400 INVALID_REQUEST naming every bad field. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = formatIssues(result.error);
  const first = issues[0];
  const where = first === undefined || first.path === '' ? what : `${what}.${first.path}`;
  throw new ApiError(
    ErrorCode.INVALID_REQUEST,
    `invalid ${where}: ${first?.message ?? 'malformed'}`,
    {
      issues,
    },
  );
}
