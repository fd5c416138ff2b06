// The ESM entry point gives the same objects as the CommonJS one.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import defaultExport, { DatadogServices, services, version } from '@datadog/serverless-node';

const require = createRequire(import.meta.url);

test('import and require give the same singleton, class and version', () => {
  const cjs = require('@datadog/serverless-node');
  assert.equal(services, cjs.services);
  assert.equal(DatadogServices, cjs.DatadogServices);
  assert.equal(defaultExport, cjs);
  assert.match(version, /^\d+\.\d+\.\d+$/);
  assert.equal(version, require('../../package.json').version);
  assert.ok(services instanceof DatadogServices);
  assert.equal(services.isRunning(), false);
});
