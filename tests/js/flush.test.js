'use strict';
// flush(): what a serverless handler calls before it returns. It sends every bucket (open ones
// included), events, checks and traces, resolves once the intake answered, and never blocks the
// event loop meanwhile.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');

const { Intake, REPO, sendStatsd } = require('./helpers/intake');
const msgpack = require('./helpers/msgpack');

const { services, DatadogServices } = require(REPO);

let intake;
test.before(async () => {
  intake = await Intake.start();
});
test.after(async () => {
  await intake.stop();
});
test.afterEach(async () => {
  await intake.control('POST', '/_control/fail', { clear: true });
  if (services.isRunning()) await services.stop();
});

test('flush sends the open bucket now: the series is at the intake when flush resolves', async () => {
  await services.start(intake.config());
  await sendStatsd(services.ports.dogstatsd, ['flush.now:5|c|#case:flush', 'flush.gauge:7|g|#case:flush']);
  await services.flush();
  const names = (await intake.series()).filter((s) => s.tags.includes('case:flush')).map((s) => s.metric).sort();
  assert.deepEqual(names, ['flush.gauge', 'flush.now']);
  assert.equal(services.isRunning(), true, 'flush keeps the services running');
  assert.ok(services.stats().seriesSent >= 2);
});

test('flush sends events and service checks too', async () => {
  await services.start(intake.config());
  await sendStatsd(services.ports.dogstatsd, ['_e{5,4}:hello|body|#case:flush-event', '_sc|flush.check|1|#case:flush-check']);
  await services.flush();
  const events = await intake.events();
  assert.ok(JSON.stringify(events).includes('hello'), JSON.stringify(events));
  const checks = await intake.checks();
  assert.ok(checks.some((c) => c.check === 'flush.check' && c.status === 1), JSON.stringify(checks));
});

test('flush sends pending traces (received over HTTP by the trace agent)', async () => {
  await services.start(intake.config());
  const trace = msgpack.encode([[{
    trace_id: 11, span_id: 12, parent_id: 0, name: 'flush.span', service: 'flush-svc', resource: 'GET /',
    type: 'web', start: BigInt(Date.now()) * 1000000n, duration: 1000, error: 0, meta: {}, metrics: {},
  }]]);
  await new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: services.ports.traceAgent, method: 'PUT', path: '/v0.4/traces',
      headers: { 'content-type': 'application/msgpack', 'x-datadog-trace-count': '1' },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(trace);
  });
  await services.flush();
  const spans = await intake.spans();
  assert.ok(spans.some((s) => s.name === 'flush.span' && s.service === 'flush-svc'), JSON.stringify(spans));
});

test('flush sends agent-computed trace stats (agentStatsComputationEnabled)', async () => {
  await services.start(intake.config({ agentStatsComputationEnabled: true }));
  const span = (id, error) => ({
    trace_id: id, span_id: id + 1, parent_id: 0, name: 'stats.span', service: 'stats-svc', resource: 'GET /s',
    type: 'web', start: BigInt(Date.now()) * 1000000n, duration: 2000, error, meta: {}, metrics: {},
  });
  const body = msgpack.encode([[span(21, 0)], [span(31, 1)]]);
  await new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: services.ports.traceAgent, method: 'PUT', path: '/v0.4/traces',
      headers: { 'content-type': 'application/msgpack' },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  await services.flush();
  const payloads = await intake.accepted('/api/v0.2/stats');
  assert.equal(payloads.length, 1, JSON.stringify(payloads));
  assert.equal(payloads[0].ClientComputed, false);
  const group = payloads[0].Stats[0].Stats[0].Stats[0];
  assert.equal(group.Resource, 'GET /s');
  assert.deepEqual([group.Hits, group.Errors, group.Duration, group.TopLevelHits], [2, 1, 4000, 2]);
  const stats = services.stats();
  assert.deepEqual([stats.traceStatsSpans, stats.traceStatsBuckets, stats.traceStatsKeys], [2, 1, 1]);
});

test('flush when not running rejects with ERR_NOT_RUNNING, before start and after stop', async () => {
  const fresh = new DatadogServices();
  await assert.rejects(fresh.flush(), { code: 'ERR_NOT_RUNNING', message: 'Services not running' });
  await fresh.start(intake.config());
  await fresh.stop();
  const err = await fresh.flush().then(() => null, (e) => e);
  assert.equal(err.code, 'ERR_NOT_RUNNING');
  assert.match(err.stack.split('\n')[1], new RegExp(path.basename(__filename)), err.stack);
});

test('flush right after start (not awaited) waits for the start', async () => {
  const started = services.start(intake.config());
  const flushed = services.flush();
  await started;
  await flushed;
});

test('flush with a stalled intake rejects with ERR_SHUTDOWN_TIMEOUT ("Flush timeout exceeded"), services keep running', async () => {
  await intake.fail({ path: '/api/v2/series', delay_ms: 3000, count: 1 });
  await services.start(intake.config());
  await sendStatsd(services.ports.dogstatsd, 'flush.stalled:1|c');
  const t0 = Date.now();
  const err = await services.flush(300).then(() => null, (e) => e);
  assert.ok(err, 'flush rejected');
  assert.equal(err.code, 'ERR_SHUTDOWN_TIMEOUT');
  assert.match(err.message, /^Flush timeout exceeded/);
  assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  assert.equal(services.isRunning(), true);
});

test('flush does not block the event loop while the intake is slow', async () => {
  await intake.fail({ path: '/api/v2/series', delay_ms: 500, count: 1 });
  await services.start(intake.config());
  await sendStatsd(services.ports.dogstatsd, 'flush.slow:1|c');
  let ticks = 0;
  const timer = setInterval(() => {
    ticks++;
  }, 10);
  const t0 = Date.now();
  await services.flush();
  clearInterval(timer);
  assert.ok(Date.now() - t0 >= 400, 'flush waited for the intake');
  assert.ok(ticks >= 20, `only ${ticks} ticks`);
});

test('flush timeoutMs must be an integer in range', async () => {
  await services.start(intake.config());
  await assert.rejects(services.flush(-1), { code: 'ERR_OUT_OF_RANGE' });
  await assert.rejects(services.flush(1.5), { code: 'ERR_OUT_OF_RANGE' });
});

test('flush sends the entries the logs agent accepted (logsEnabled, port from its ready status)', async () => {
  const ready = [];
  await services.start(intake.config({ useTraceAgent: false, logsEnabled: true, logsPort: 0, logsDdUrl: intake.url }),
    (status) => { if (status.type === 'ready') ready.push(status); });
  const deadline = Date.now() + 5000;
  while (!ready.some((s) => s.service === 'logs-agent') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const { port } = ready.find((s) => s.service === 'logs-agent');
  assert.ok(port > 0);
  const entries = [{ message: 'from node', timestamp: 1700000000000, service: 'js' }];
  const body = Buffer.from(JSON.stringify(entries));
  const answer = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/input',
      headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve([res.statusCode, Buffer.concat(chunks).toString()]));
    });
    req.on('error', reject);
    req.end(body);
  });
  assert.deepEqual(answer, [200, 'ok']);
  await services.flush();
  const records = await intake.records('/api/v2/logs');
  assert.equal(records.length, 1);
  assert.deepEqual(records[0].payload, entries);
  assert.equal(records[0].headers['dd-protocol'], 'agent-json');
  assert.equal(records[0].content_encoding, 'zstd');
  const stats = services.stats();
  assert.equal(stats.logsRequests, 1);
  assert.equal(stats.logsEntries, 1);
});

test('every error status names its service: a rejected key is the DogStatsD server\'s, the stop is the process\'s', async () => {
  await intake.fail({ path: '/api/v2/series', status: 403, count: -1 });
  const statuses = [];
  await services.start(intake.config({ useTraceAgent: false }), (status) => statuses.push(status));
  await sendStatsd(services.ports.dogstatsd, 'flush.rejected:1|c');
  await services.flush();
  await services.stop();
  await new Promise((resolve) => setImmediate(resolve));
  const errors = statuses.filter((s) => s.type === 'error');
  assert.ok(errors.length >= 1, JSON.stringify(statuses));
  for (const e of errors) assert.equal(e.service, 'dogstatsd', JSON.stringify(e));
  assert.match(errors[0].message, /rejected the API key \(HTTP 403\)/);
  // What the README's example prints: a service name, never "undefined".
  assert.ok(!`Service ${errors[0].service} error: ${errors[0].message}`.includes('undefined'));
  const stopped = statuses.find((s) => s.type === 'stopped');
  assert.equal(stopped && stopped.service, 'process', JSON.stringify(statuses));
});
