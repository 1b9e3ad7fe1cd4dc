/**
 * @packageDocumentation
 * The DMQ metadata service's HTTP contract (`shared/docs/contract.md`) as zod schemas and the
 * types inferred from them: every request, response and error. Servers validate with these
 * schemas; clients (`@dmq/metadata-client`) parse answers with them.
 */
export * from './errors';
export * from './primitives';
export * from './topic-config';
export * from './topics';
export * from './brokers';
export * from './metadata';
export * from './cluster';
export * from './http';
export * from './peers';
export { formatIssues } from './format-issues';
