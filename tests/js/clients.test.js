'use strict';
// The real clients users already have, unchanged, against an embedded instance: hot-shots
// (DogStatsD over UDP) and dd-trace (traces, and runtime metrics through /dogstatsd/v2/proxy),
// checked at the fake intake.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const StatsD = require('hot-shots');
const { Intake, REPO, runNode } = require('./helpers/intake');

const { services } = require(REPO);

let intake;
test.before(async () => {
  intake = await Intake.start();
});
test.after(async () => {
  await intake.stop();
});
test.afterEach(async () => {
  if (services.isRunning()) await services.stop();
});

test('hot-shots: counters, gauges, histograms, distributions, sets, events and service checks arrive', async () => {
  await services.start(intake.config());
  const errors = [];
  const client = new StatsD({
    host: '127.0.0.1', port: services.ports.dogstatsd, globalTags: { case: 'hotshots' }, errorHandler: (e) => errors.push(e),
  });
  const sent = (fn) => new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
  await sent((cb) => client.increment('hs.requests', 3, { route: '/a' }, cb));
  await sent((cb) => client.gauge('hs.queue', 17, cb));
  await sent((cb) => client.histogram('hs.latency', 10, cb));
  await sent((cb) => client.histogram('hs.latency', 30, cb));
  await sent((cb) => client.timing('hs.timer', 5, cb));
  await sent((cb) => client.distribution('hs.size', 100, cb));
  await sent((cb) => client.set('hs.users', 'alice', cb));
  await sent((cb) => client.set('hs.users', 'bob', cb));
  await sent((cb) => client.event('Deploy done', 'v1 is out', { alert_type: 'success' }, cb));
  await sent((cb) => client.check('hs.health', client.CHECKS.WARNING, { message: 'degraded' }, cb));
  await new Promise((resolve) => client.close(resolve));
  assert.deepEqual(errors, []);

  await services.flush();
  const series = (await intake.series()).filter((s) => s.tags.includes('case:hotshots'));
  const byName = Object.fromEntries(series.map((s) => [s.metric, s]));
  assert.equal(byName['hs.requests'].type, 'rate');
  assert.ok(byName['hs.requests'].tags.includes('route:/a'));
  assert.equal(byName['hs.requests'].points[0][1] * byName['hs.requests'].interval, 3);
  assert.equal(byName['hs.queue'].points[0][1], 17);
  assert.equal(byName['hs.latency.max'].points[0][1], 30);
  assert.equal(byName['hs.latency.avg'].points[0][1], 20);
  assert.ok(byName['hs.timer.count']);
  assert.equal(byName['hs.users'].points[0][1], 2);
  const sketches = (await intake.sketches()).filter((s) => s.metric === 'hs.size');
  assert.equal(sketches.length, 1);
  assert.equal(Number(sketches[0].dogsketches[0].cnt), 1);
  const events = await intake.events();
  assert.ok(JSON.stringify(events).includes('Deploy done'), JSON.stringify(events));
  const checks = await intake.checks();
  const check = checks.find((c) => c.check === 'hs.health');
  assert.ok(check, JSON.stringify(checks));
  assert.equal(check.status, 1);
  assert.equal(check.message, 'degraded');
});

test('dd-trace: spans arrive intact, and runtime metrics arrive as series through /dogstatsd/v2/proxy', async () => {
  const out = await runNode(path.join(__dirname, 'fixtures', 'ddtrace-app.js'), [], {
    timeoutMs: 45000,
    env: intake.env({
      DD_RUNTIME_METRICS_FLUSH_INTERVAL: '200',
      DD_REMOTE_CONFIGURATION_ENABLED: 'false',
      DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false',
      DD_TRACE_STARTUP_LOGS: 'false',
    }),
  });
  assert.equal(out.code, 0, out.stderr);
  const ids = JSON.parse(out.stdout.trim().split('\n').at(-1));
  assert.ok(ids.stats.traceSpans >= 2, JSON.stringify(ids.stats));

  const spans = await intake.waitFor('both spans', async (i) => {
    const all = await i.spans();
    const root = all.find((s) => s.name === 'web.request' && s.spanID === Number(ids.root.spanId));
    const db = all.find((s) => s.name === 'db.query' && s.spanID === Number(ids.db.spanId));
    return root && db ? { root, db } : null;
  });
  assert.equal(spans.root.service, 'js-e2e');
  assert.equal(spans.root.resource, 'GET /checkout');
  assert.equal(spans.root.type, 'web');
  assert.equal(spans.root.parentID, 0);
  assert.equal(spans.root.language, 'nodejs');  // Datadog-Meta-Lang, as dd-trace sends it
  assert.equal(spans.db.parentID, spans.root.spanID);
  assert.equal(spans.db.traceID, spans.root.traceID);
  assert.equal(spans.db.service, 'js-db');
  // a sql span: the Go Agent's SQL obfuscation turns the literal into ?, and sql.query follows
  assert.equal(spans.db.resource, 'SELECT ?');
  assert.equal(spans.db.meta['sql.query'], 'SELECT ?');

  const runtime = await intake.waitFor('runtime metrics', async (i) => {
    const found = (await i.series()).filter((s) => s.metric.startsWith('runtime.node.'));
    return found.length ? found : null;
  });
  const names = new Set(runtime.map((s) => s.metric));
  assert.ok(names.has('runtime.node.mem.heap_used'), [...names].join());
  const heap = runtime.find((s) => s.metric === 'runtime.node.mem.heap_used');
  assert.ok(heap.tags.includes('service:js-e2e'), heap.tags.join());
  assert.ok(heap.points[0][1] > 1e6, 'a heap of more than 1 MB');
  // dd-trace was given the agent URL, so its metrics went over HTTP (/dogstatsd/v2/proxy), whose
  // bodies count as DogStatsD packets and bytes.
  assert.ok(ids.stats.dsdPackets >= 1 && ids.stats.dsdBytes > 0, JSON.stringify(ids.stats));
});
