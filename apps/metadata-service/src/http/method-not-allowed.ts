import type { NextFunction, Request, Response } from 'express';
import { ErrorCode } from '@dmq/api-contracts';
import { ApiError } from './api-error';

/** Answers 405 for a known path with another method. */
export function methodNotAllowed(req: Request, _res: Response, next: NextFunction): void {
  next(
    new ApiError(
      ErrorCode.METHOD_NOT_ALLOWED,
      `${req.method} is not allowed on ${req.baseUrl}${req.path}`,
    ),
  );
}
