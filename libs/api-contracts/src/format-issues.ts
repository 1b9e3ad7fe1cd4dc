import type { z } from 'zod';
import type { FieldIssue } from './errors';

/** Turns zod issues into the `issues` of an INVALID_REQUEST body, with a dotted path. */
export function formatIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}
