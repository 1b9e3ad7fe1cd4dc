import { Router } from 'express';
import { z } from 'zod';
import {
  addMemberRequestSchema,
  leadershipTransferRequestSchema,
  nodeIdSchema,
} from '@dmq/api-contracts';
import type { MetadataApi } from '../ports';
import { clientSignal, writeOptions } from '../request-context';
import { parseOrThrow } from '../validate';
import { methodNotAllowed } from '../method-not-allowed';
import { bodyOf } from './read-options';

const memberPathSchema = z.strictObject({ id: z.coerce.number().pipe(nodeIdSchema) });

const deadLettersQuerySchema = z.strictObject({
  limit: z.coerce.number().pipe(z.int().min(1).max(1_000)).default(100),
});

/** `/cluster…` and `/backup…`: operations. */
export function clusterRoutes(api: MetadataApi): Router {
  const router = Router();

  router
    .route('/cluster')
    .get((_req, res) => {
      res.json(api.clusterStatus());
    })
    .all(methodNotAllowed);

  router
    .route('/cluster/leadership-transfer')
    .post(async (req, res) => {
      const { targetId } = parseOrThrow(leadershipTransferRequestSchema, bodyOf(req), 'body');
      res.json(await api.transferLeadership(targetId, clientSignal(req, res)));
    })
    .all(methodNotAllowed);

  router
    .route('/cluster/snapshot')
    .post(async (req, res) => {
      parseOrThrow(z.strictObject({}), bodyOf(req), 'body');
      res.json(await api.snapshot(clientSignal(req, res)));
    })
    .all(methodNotAllowed);

  router
    .route('/cluster/members')
    .post(async (req, res) => {
      const body = bodyOf(req);
      const request = parseOrThrow(addMemberRequestSchema, body, 'body');
      res.json(await api.addMember(request, writeOptions(req, res, body)));
    })
    .all(methodNotAllowed);

  router
    .route('/cluster/members/:id')
    .delete(async (req, res) => {
      const { id } = parseOrThrow(memberPathSchema, req.params, 'path');
      res.json(await api.removeMember(id, writeOptions(req, res, null)));
    })
    .all(methodNotAllowed);

  router
    .route('/backup/resync')
    .post(async (req, res) => {
      parseOrThrow(z.strictObject({}), bodyOf(req), 'body');
      res.json(await api.backupResync(clientSignal(req, res)));
    })
    .all(methodNotAllowed);

  router
    .route('/backup/dead-letters')
    .get(async (req, res) => {
      const { limit } = parseOrThrow(deadLettersQuerySchema, req.query, 'query');
      res.json(await api.backupDeadLetters(limit));
    })
    .all(methodNotAllowed);

  return router;
}
