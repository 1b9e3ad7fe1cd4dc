import { Router } from 'express';
import {
  brokerPathSchema,
  heartbeatRequestSchema,
  registerBrokerRequestSchema,
} from '@dmq/api-contracts';
import type { MetadataApi } from '../ports';
import { writeOptions } from '../request-context';
import { parseOrThrow } from '../validate';
import { methodNotAllowed } from '../method-not-allowed';
import { bodyOf, readBarrier } from './read-options';

/** `/brokers…`: registration, heartbeats, controlled shutdown. */
export function brokerRoutes(api: MetadataApi): Router {
  const router = Router();

  router
    .route('/brokers')
    .get(async (req, res) => {
      await readBarrier(api, req, res);
      res.json({ brokers: api.listBrokers() });
    })
    .post(async (req, res) => {
      const body = bodyOf(req);
      const request = parseOrThrow(registerBrokerRequestSchema, body, 'body');
      res.json(await api.registerBroker(request, writeOptions(req, res, body)));
    })
    .all(methodNotAllowed);

  router
    .route('/brokers/:id')
    .delete(async (req, res) => {
      const { id } = parseOrThrow(brokerPathSchema, req.params, 'path');
      await api.unregisterBroker(id, writeOptions(req, res, null));
      res.status(204).end();
    })
    .all(methodNotAllowed);

  router
    .route('/brokers/:id/heartbeat')
    .post(async (req, res) => {
      const { id } = parseOrThrow(brokerPathSchema, req.params, 'path');
      const body = bodyOf(req);
      const request = parseOrThrow(heartbeatRequestSchema, body, 'body');
      res.json(await api.heartbeat(id, request, writeOptions(req, res, body)));
    })
    .all(methodNotAllowed);

  return router;
}
