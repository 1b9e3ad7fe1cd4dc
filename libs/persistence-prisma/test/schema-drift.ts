// Compares what schema.prisma declares (Prisma's DMMF, written by prisma/generators/dmmf-json.cjs
// during `prisma generate`) with what the SQL migrations actually built (pg_catalog), as sorted
// one-line facts: tables, columns (type, nullability, default), primary keys, unique and plain
// indexes, foreign keys. The expected side encodes the DDL conventions of Prisma Migrate for
// PostgreSQL; anything this file does not know yet throws, so a new kind of attribute cannot
// slip through unchecked.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';

/** The parts of Prisma's DMMF datamodel this comparison reads. */
export interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'object' | 'enum' | 'unsupported';
  type: string;
  isList: boolean;
  isRequired: boolean;
  nativeType?: [string, string[]] | null;
  hasDefaultValue: boolean;
  default?: unknown;
}
export interface DmmfModel {
  name: string;
  dbName: string | null;
  schema?: string | null;
  fields: DmmfField[];
}
export interface DmmfIndex {
  model: string;
  type: 'id' | 'unique' | 'normal' | 'fulltext';
  dbName?: string | null;
  fields: { name: string; sortOrder?: string; length?: number; operatorClass?: string }[];
}
export interface DmmfDatamodel {
  models: DmmfModel[];
  enums: unknown[];
  indexes: DmmfIndex[];
}

export const SCHEMA_FILE = path.resolve(__dirname, '../../../prisma/schema.prisma');
export const DMMF_FILE = path.resolve(__dirname, '../src/generated/dmmf/dmmf.json');

/** Loads the DMMF snapshot, refusing one generated from another version of schema.prisma. */
export async function loadDatamodel(): Promise<DmmfDatamodel> {
  let raw: string;
  try {
    raw = await readFile(DMMF_FILE, 'utf8');
  } catch (error) {
    throw new Error(
      `${DMMF_FILE} is missing: run \`npx nx run persistence-prisma:prisma-generate\` first`,
      { cause: error },
    );
  }
  const snapshot = JSON.parse(raw) as { schemaSha256: string; datamodel: DmmfDatamodel };
  const schema = await readFile(SCHEMA_FILE, 'utf8');
  const current = createHash('sha256').update(schema, 'utf8').digest('hex');
  if (snapshot.schemaSha256 !== current) {
    throw new Error(
      `${DMMF_FILE} was generated from an older schema.prisma: run ` +
        '`npx nx run persistence-prisma:prisma-generate` again. If it still differs, ' +
        'schema.prisma is not laid out as `prisma format` would (Prisma hands generators the ' +
        'formatted schema): align the columns of the model you edited',
    );
  }
  return snapshot.datamodel;
}

const fail = (what: string): never => {
  throw new Error(`schema-drift: ${what} is not handled yet; teach test/schema-drift.ts about it`);
};

const tableOf = (model: DmmfModel) => model.dbName ?? model.name;
const columnOf = (field: DmmfField) => field.dbName ?? field.name;

/** PostgreSQL's `format_type()` of the column Prisma Migrate creates for a scalar field. */
function expectedType(model: DmmfModel, field: DmmfField): string {
  const [native, args = []] = field.nativeType ?? [undefined, []];
  const key = `${field.type}/${native ?? ''}`;
  let base: string;
  switch (key) {
    case 'String/':
    case 'String/Text':
      base = 'text';
      break;
    case 'String/Uuid':
      base = 'uuid';
      break;
    case 'String/VarChar':
      base = args.length ? `character varying(${args[0]})` : 'character varying';
      break;
    case 'Int/':
    case 'Int/Integer':
      base = 'integer';
      break;
    case 'Int/SmallInt':
      base = 'smallint';
      break;
    case 'BigInt/':
    case 'BigInt/BigInt':
      base = 'bigint';
      break;
    case 'Boolean/':
      base = 'boolean';
      break;
    case 'Float/':
      base = 'double precision';
      break;
    case 'Json/':
    case 'Json/JsonB':
      base = 'jsonb';
      break;
    case 'Bytes/':
      base = 'bytea';
      break;
    case 'DateTime/':
      base = 'timestamp(3) without time zone';
      break;
    case 'DateTime/Timestamptz':
      base = `timestamp(${args[0] ?? 6}) with time zone`;
      break;
    case 'DateTime/Timestamp':
      base = `timestamp(${args[0] ?? 6}) without time zone`;
      break;
    default:
      return fail(`type ${key} of ${model.name}.${field.name}`);
  }
  return field.isList ? `${base}[]` : base;
}

/** `pg_get_expr()` of the column default Prisma Migrate creates, or null for none. */
function expectedDefault(model: DmmfModel, field: DmmfField): string | null {
  if (!field.hasDefaultValue) return null;
  const value = field.default;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'string' && field.type === 'BigInt' && /^-?\d+$/.test(value)) {
    // DMMF gives BigInt defaults as strings; PostgreSQL prints an int4-sized literal bare.
    const n = BigInt(value);
    return n >= -(2n ** 31n) && n < 2n ** 31n ? value : `'${value}'::bigint`;
  }
  if (typeof value === 'string') {
    const literal = `'${value.replace(/'/g, "''")}'`;
    if (field.type === 'String') return `${literal}::text`;
    if (field.type === 'Json') return `${literal}::jsonb`;
    return fail(`string default of ${model.name}.${field.name}`);
  }
  if (Array.isArray(value) && value.length === 0 && field.isList) {
    return `ARRAY[]::${expectedType(model, field)}`;
  }
  if (value && typeof value === 'object' && 'name' in value) {
    const fn = value as { name: string; args: unknown[] };
    switch (fn.name) {
      case 'now':
        return 'CURRENT_TIMESTAMP';
      case 'autoincrement':
        return `nextval('${tableOf(model)}_${columnOf(field)}_seq'::regclass)`;
      case 'uuid':
      case 'cuid':
      case 'nanoid':
      case 'ulid':
        return null; // generated by the client, not by the database
      case 'dbgenerated':
        return String(fn.args[0]);
      default:
        return fail(`default ${fn.name}() of ${model.name}.${field.name}`);
    }
  }
  return fail(`default ${JSON.stringify(value)} of ${model.name}.${field.name}`);
}

/** Prisma's default constraint/index names (`<table>_pkey`, `<table>_<cols>_key`, `_idx`). */
function expectedIndexName(table: string, index: DmmfIndex, columns: string[]): string {
  if (index.dbName) return index.dbName;
  const suffix = { id: 'pkey', unique: 'key', normal: 'idx', fulltext: 'idx' }[index.type];
  const name = index.type === 'id' ? `${table}_pkey` : `${table}_${columns.join('_')}_${suffix}`;
  // Prisma truncates long names; none of ours is, and guessing its rule would hide a mismatch.
  return name.length > 63 ? fail(`index name longer than 63 characters (${name})`) : name;
}

/** The sorted facts schema.prisma implies for the database. */
export function expectedFacts(datamodel: DmmfDatamodel): string[] {
  if (datamodel.enums.length > 0) fail('an enum');
  const facts: string[] = [];
  const models = new Map(datamodel.models.map((model) => [model.name, model]));
  for (const model of datamodel.models) {
    if (model.schema) fail(`the multi-schema model ${model.name}`);
    const table = tableOf(model);
    facts.push(`table ${table}`);
    for (const field of model.fields) {
      if (field.kind !== 'scalar') fail(`the ${field.kind} field ${model.name}.${field.name}`);
      const notNull = field.isRequired && !field.isList ? ' NOT NULL' : '';
      const defaultExpression = expectedDefault(model, field);
      const defaultText = defaultExpression === null ? '' : ` DEFAULT ${defaultExpression}`;
      facts.push(
        `column ${table}.${columnOf(field)} ${expectedType(model, field)}${notNull}${defaultText}`,
      );
    }
  }
  for (const index of datamodel.indexes) {
    const model = models.get(index.model) ?? fail(`an index on unknown model ${index.model}`);
    const fieldsByName = new Map(model.fields.map((field) => [field.name, field]));
    const columns = index.fields.map((indexField) => {
      if (indexField.sortOrder || indexField.length || indexField.operatorClass) {
        fail(`sort order, length or operator class on ${index.model}.${indexField.name}`);
      }
      const field = fieldsByName.get(indexField.name) ?? fail(`index field ${indexField.name}`);
      return columnOf(field);
    });
    const table = tableOf(model);
    const kind =
      index.type === 'fulltext'
        ? fail('a fulltext index')
        : { id: 'PRIMARY KEY', unique: 'UNIQUE', normal: 'INDEX' }[index.type];
    facts.push(
      `index ${expectedIndexName(table, index, columns)} ${kind} ON ${table} (${columns.join(', ')})`,
    );
  }
  return facts.sort();
}

/** The same facts, read from the database (`_prisma_migrations` left out). */
export async function actualFacts(databaseUrl: string): Promise<string[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const facts: string[] = [];
    const tables = await client.query<{ table: string }>(
      `SELECT c.relname AS table FROM pg_class c
       WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
         AND c.relname <> '_prisma_migrations'`,
    );
    for (const { table } of tables.rows) facts.push(`table ${table}`);

    const columns = await client.query<{
      table: string;
      column: string;
      type: string;
      not_null: boolean;
      default: string | null;
    }>(
      `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
              a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
         AND c.relname <> '_prisma_migrations' AND a.attnum > 0 AND NOT a.attisdropped`,
    );
    for (const column of columns.rows) {
      const notNull = column.not_null ? ' NOT NULL' : '';
      const defaultText = column.default === null ? '' : ` DEFAULT ${column.default}`;
      facts.push(`column ${column.table}.${column.column} ${column.type}${notNull}${defaultText}`);
    }

    const indexes = await client.query<{
      table: string;
      name: string;
      is_primary: boolean;
      is_unique: boolean;
      is_partial: boolean;
      columns: string[];
    }>(
      `SELECT t.relname AS table, i.relname AS name, x.indisprimary AS is_primary,
              x.indisunique AS is_unique, x.indpred IS NOT NULL AS is_partial,
              array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                    ORDER BY k.n)::text[] AS columns
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_class t ON t.oid = x.indrelid
       WHERE t.relnamespace = current_schema()::regnamespace AND t.relname <> '_prisma_migrations'`,
    );
    for (const index of indexes.rows) {
      const kind = index.is_primary ? 'PRIMARY KEY' : index.is_unique ? 'UNIQUE' : 'INDEX';
      const partial = index.is_partial ? ' WHERE …' : '';
      facts.push(
        `index ${index.name} ${kind} ON ${index.table} (${index.columns.join(', ')})${partial}`,
      );
    }

    const constraints = await client.query<{ name: string; table: string; type: string }>(
      `SELECT con.conname AS name, c.relname AS table, con.contype AS type
       FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
       WHERE c.relnamespace = current_schema()::regnamespace AND con.contype IN ('f', 'c', 'x', 'u')
         AND c.relname <> '_prisma_migrations'`,
    );
    for (const constraint of constraints.rows) {
      // schema.prisma declares none of these yet (no relations, no checks, unique ones are
      // indexes): each one found is drift until this comparison learns to expect it.
      facts.push(`constraint ${constraint.name} (${constraint.type}) ON ${constraint.table}`);
    }
    return facts.sort();
  } finally {
    await client.end();
  }
}

/** A readable diff of two sorted fact lists; empty when they agree. */
export function describeDrift(expected: readonly string[], actual: readonly string[]): string {
  const expectedSet = new Set(expected);
  const actualSet = new Set(actual);
  const missing = expected.filter((fact) => !actualSet.has(fact));
  const unexpected = actual.filter((fact) => !expectedSet.has(fact));
  if (missing.length === 0 && unexpected.length === 0) return '';
  return [
    'schema.prisma and prisma/migrations disagree.',
    ...(missing.length
      ? ['In schema.prisma, not in the migrated database:', ...missing.map((f) => `  - ${f}`)]
      : []),
    ...(unexpected.length
      ? ['In the migrated database, not in schema.prisma:', ...unexpected.map((f) => `  + ${f}`)]
      : []),
  ].join('\n');
}
