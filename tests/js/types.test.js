'use strict';
// index.d.ts: tsc --noEmit over a small program that uses the API as users do (types/check.ts).
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const { REPO } = require('./helpers/intake');

test('index.d.ts type-checks the documented usage and rejects the usual mistakes', () => {
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const out = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'tsconfig.json')], { encoding: 'utf8', timeout: 120000 });
  assert.equal(out.status, 0, `${out.stdout}${out.stderr}`);
});
