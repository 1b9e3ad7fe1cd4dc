import { Router } from 'express';
import {
  alterPartitionRequestSchema,
  createTopicRequestSchema,
  ErrorCode,
  partitionPathSchema,
  topicPathSchema,
  updateTopicConfigRequestSchema,
  type TopicMetadata,
} from '@dmq/api-contracts';
import { ApiError } from '../api-error';
import type { MetadataApi } from '../ports';
import { writeOptions } from '../request-context';
import { parseOrThrow } from '../validate';
import { methodNotAllowed } from '../method-not-allowed';
import { bodyOf, readBarrier } from './read-options';

function requireTopic(api: MetadataApi, name: string): TopicMetadata {
  const topic = api.getTopic(name);
  if (topic === undefined)
    throw new ApiError(ErrorCode.TOPIC_NOT_FOUND, `topic "${name}" does not exist`);
  return topic;
}

/** `/topics…`: topic admin and AlterPartition. */
export function topicRoutes(api: MetadataApi): Router {
  const router = Router();

  router
    .route('/topics')
    .get(async (req, res) => {
      await readBarrier(api, req, res);
      res.json({ topics: api.listTopics() });
    })
    .post(async (req, res) => {
      const body = bodyOf(req);
      const request = parseOrThrow(createTopicRequestSchema, body, 'body');
      const topic = await api.createTopic(request, writeOptions(req, res, body));
      res.status(201).json(topic);
    })
    .all(methodNotAllowed);

  router
    .route('/topics/:name')
    .get(async (req, res) => {
      const { name } = parseOrThrow(topicPathSchema, req.params, 'path');
      await readBarrier(api, req, res);
      res.json(requireTopic(api, name));
    })
    .delete(async (req, res) => {
      const { name } = parseOrThrow(topicPathSchema, req.params, 'path');
      await api.deleteTopic(name, writeOptions(req, res, null));
      res.status(204).end();
    })
    .all(methodNotAllowed);

  router
    .route('/topics/:name/config')
    .put(async (req, res) => {
      const { name } = parseOrThrow(topicPathSchema, req.params, 'path');
      const body = bodyOf(req);
      const { config } = parseOrThrow(updateTopicConfigRequestSchema, body, 'body');
      res.json(await api.updateTopicConfig(name, config, writeOptions(req, res, body)));
    })
    .all(methodNotAllowed);

  router
    .route('/topics/:name/partitions')
    .get(async (req, res) => {
      const { name } = parseOrThrow(topicPathSchema, req.params, 'path');
      await readBarrier(api, req, res);
      res.json({ partitions: requireTopic(api, name).partitions });
    })
    .all(methodNotAllowed);

  router
    .route('/topics/:name/partitions/:partition/state')
    .post(async (req, res) => {
      const { name, partition } = parseOrThrow(partitionPathSchema, req.params, 'path');
      const body = bodyOf(req);
      const request = parseOrThrow(alterPartitionRequestSchema, body, 'body');
      res.json(await api.alterPartition(name, partition, request, writeOptions(req, res, body)));
    })
    .all(methodNotAllowed);

  return router;
}
