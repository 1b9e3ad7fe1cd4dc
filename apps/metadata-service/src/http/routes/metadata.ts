import { Router } from 'express';
import { DEFAULT_WAIT_MS, metadataQuerySchema } from '@dmq/api-contracts';
import type { MetadataApi } from '../ports';
import { clientSignal } from '../request-context';
import { parseOrThrow } from '../validate';
import { methodNotAllowed } from '../method-not-allowed';

/**
 * `GET /metadata`: the long-poll storage brokers use. It is served from the local state of
 * whichever node receives it (brokers can spread over followers); it answers as soon as the
 * local version exceeds `sinceVersion`, or after `waitMs` with the same version.
 */
export function metadataRoutes(api: MetadataApi): Router {
  const router = Router();
  router
    .route('/metadata')
    .get(async (req, res) => {
      const query = parseOrThrow(metadataQuerySchema, req.query, 'query');
      if (query.sinceVersion !== undefined && api.metadataVersion() <= query.sinceVersion) {
        await api.waitForVersionAbove(
          query.sinceVersion,
          query.waitMs ?? DEFAULT_WAIT_MS,
          clientSignal(req, res),
        );
      }
      if (res.destroyed) return;
      if (query.delta === true && query.sinceVersion !== undefined) {
        res.json(api.metadataDelta(query.sinceVersion));
      } else {
        res.json(api.metadata());
      }
    })
    .all(methodNotAllowed);
  return router;
}
