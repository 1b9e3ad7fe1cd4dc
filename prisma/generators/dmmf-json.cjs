#!/usr/bin/env node
// A minimal Prisma generator that writes the schema's DMMF (Prisma's own parsed datamodel:
// models, fields, native types, defaults, ids, unique indexes) to `<output>/dmmf.json`.
//
// libs/persistence-prisma's schema-drift test compares it with the database that the SQL
// migrations build, so schema.prisma and prisma/migrations cannot silently disagree. It needs
// no network and no extra package: it speaks Prisma's generator protocol directly
// (JSON-RPC requests, one per line, on stdin; responses, one per line, on stderr).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

function respond(message) {
  process.stderr.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
}

function generate(options) {
  const output = options.generator.output && options.generator.output.value;
  if (!output) throw new Error('the dmmf generator needs an `output` directory');
  fs.mkdirSync(output, { recursive: true });
  const snapshot = {
    // Lets a reader detect a snapshot older than the schema it was generated from.
    schemaSha256: crypto.createHash('sha256').update(options.datamodel, 'utf8').digest('hex'),
    datamodel: options.dmmf.datamodel,
  };
  fs.writeFileSync(path.join(output, 'dmmf.json'), `${JSON.stringify(snapshot, null, 2)}\n`);
}

readline.createInterface({ input: process.stdin, crlfDelay: Infinity }).on('line', (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return;
  }
  try {
    if (request.method === 'getManifest') {
      respond({
        id: request.id,
        result: { manifest: { prettyName: 'DMQ DMMF snapshot', requiresEngines: [] } },
      });
    } else if (request.method === 'generate') {
      generate(request.params);
      respond({ id: request.id, result: null });
    }
  } catch (error) {
    respond({
      id: request.id,
      error: {
        code: -32000,
        message: String(error && error.message),
        data: { stack: error && error.stack },
      },
    });
  }
});
