'use strict';
// examples/node/ keep working: each runs against the fake intake and its data arrives.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { spawn } = require('node:child_process');
const path = require('node:path');

const { Intake, REPO, runNode } = require('./helpers/intake');

let intake;
test.before(async () => {
  intake = await Intake.start();
});
test.after(async () => {
  await intake.stop();
});

test('examples/node/handler.js: the handler flushes before returning', async () => {
  const out = await runNode(path.join(REPO, 'examples', 'node', 'handler.js'), [], { env: intake.env(), timeoutMs: 20000 });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /statusCode: 200/);
  const names = (await intake.series()).filter((s) => s.tags.includes('handler:orders')).map((s) => s.metric);
  assert.ok(names.includes('orders.received'), names.join());
  assert.ok(names.includes('orders.items.max'), names.join());
  assert.ok((await intake.sketches()).some((s) => s.metric === 'orders.handler.duration_ms'));
});

test('examples/node/server.js: dd-trace spans and hot-shots metrics arrive, SIGTERM flushes', async () => {
  const env = intake.env({ PORT: '0', DD_REMOTE_CONFIGURATION_ENABLED: 'false', DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false', DD_SERVICE: 'example-server',
    DD_TRACE_FLUSH_INTERVAL: '100' });
  const child = spawn(process.execPath, [path.join(REPO, 'examples', 'node', 'server.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr += c;
  });
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30000);
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c) => {
        out += c;
        const m = out.match(/listening on (http:\/\/\S+)/);
        if (m) resolve(m[1]);
      });
      child.on('close', () => reject(new Error(`server exited: ${stderr}`)));
    });
    for (const route of ['/hello', '/world']) {
      const body = await new Promise((resolve, reject) => {
        http.get(`${url}${route}`, (res) => {
          let b = '';
          res.on('data', (c) => {
            b += c;
          });
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
      assert.equal(body, `hello from ${route}\n`);
    }
    // dd-trace exports every DD_TRACE_FLUSH_INTERVAL (100 ms here): give it time, then SIGTERM.
    // The spans then sit in the trace agent's pending payload, which the SIGTERM stop flushes.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    assert.deepEqual({ code, signal }, { code: null, signal: 'SIGTERM' }, stderr);
  } finally {
    clearTimeout(killer);
    child.kill('SIGKILL');
  }
  const spans = await intake.spans();
  const requests = spans.filter((s) => s.name === 'web.request' && s.service === 'example-server');
  assert.ok(requests.length >= 2, JSON.stringify(spans.map((s) => [s.name, s.service, s.resource])));
  assert.ok(spans.some((s) => s.name === 'example.render' && s.resource === '/hello'));
  const counts = (await intake.series()).filter((s) => s.metric === 'example.requests');
  assert.equal(counts.length, 2);
});
