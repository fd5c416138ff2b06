'use strict';
// start(): the design's cases (start/stop, status callback reaching 'ready', double start, rapid
// start/stop) and what start promises: both services bound when it resolves, errors that say which
// service failed, two instances side by side, data flowing to the intake.
const test = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const net = require('node:net');
const path = require('node:path');

const { Intake, REPO, runNode, sendStatsd } = require('./helpers/intake');

const { services, DatadogServices } = require(REPO);

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

test('should start and stop services', async () => {
  await services.start(intake.config());
  assert.strictEqual(services.isRunning(), true);
  const { dogstatsd, traceAgent } = services.ports;
  assert.ok(dogstatsd > 0 && traceAgent > 0 && dogstatsd !== traceAgent, JSON.stringify(services.ports));

  await services.stop();
  assert.strictEqual(services.isRunning(), false);
});

test('should handle status callbacks', (t, done) => {
  // The design's case (callback style); both services report 'ready', so done() once.
  let called = false;
  services.start(intake.config({ apiKey: 'test-key' }), (status) => {
    if (status.type === 'ready' && !called) {
      called = true;
      done();
    }
  });
});

test('start resolves after the callback saw ready for each service, with its bound port', async () => {
  const statuses = [];
  await services.start(intake.config(), (status) => statuses.push(status));
  const ready = Object.fromEntries(statuses.filter((s) => s.type === 'ready').map((s) => [s.service, s]));
  assert.deepEqual(Object.keys(ready).sort(), ['dogstatsd', 'trace-agent']);
  assert.equal(ready.dogstatsd.port, services.ports.dogstatsd);
  assert.equal(ready['trace-agent'].port, services.ports.traceAgent);
  for (const s of statuses) assert.equal(typeof s.message, 'string');

  await services.stop();
  assert.equal(statuses.at(-1).type, 'stopped');
  assert.deepEqual(statuses.map((s) => s.type).sort(), ['ready', 'ready', 'stopped']);
});

test('start resolves once the sockets are bound: a datagram sent right away is counted', async () => {
  await services.start(intake.config());
  await sendStatsd(services.ports.dogstatsd, 'start.bound:1|c');
  await services.stop();
  assert.equal(services.stats().dsdMetricLines, 1);
});

test('a second start on a running instance rejects with ERR_ALREADY_STARTED, pointing at the caller', async () => {
  await services.start(intake.config());
  const err = await services.start(intake.config()).then(() => null, (e) => e);
  assert.ok(err instanceof Error);
  assert.equal(err.code, 'ERR_ALREADY_STARTED');
  assert.equal(err.message, 'Services already started');
  assert.match(err.stack.split('\n')[1], new RegExp(path.basename(__filename)), err.stack);
  assert.equal(services.isRunning(), true, 'the running instance is left alone');
});

test('two concurrent starts: one wins, the other is told', async () => {
  const results = await Promise.allSettled([services.start(intake.config()), services.start(intake.config())]);
  assert.equal(results[0].status, 'fulfilled');
  assert.equal(results[1].status, 'rejected');
  assert.equal(results[1].reason.code, 'ERR_ALREADY_STARTED');
});

test('rapid start/stop: awaited cycles, then calls made without waiting, in order', async () => {
  const seen = new Set();
  for (let i = 0; i < 10; i++) {
    await services.start(intake.config());
    seen.add(services.ports.dogstatsd);
    assert.equal(services.isRunning(), true);
    await services.stop();
    assert.equal(services.isRunning(), false);
  }
  assert.ok(seen.size >= 1);
  const calls = [];
  for (let i = 0; i < 5; i++) calls.push(services.start(intake.config()), services.stop());
  await Promise.all(calls);
  assert.equal(services.isRunning(), false);
});

test('a taken DogStatsD port: ERR_DOGSTATSD_START, nothing left running, and a later start works', async () => {
  const blocker = dgram.createSocket('udp4');
  await new Promise((resolve) => blocker.bind(0, '127.0.0.1', resolve));
  try {
    const port = blocker.address().port;
    await assert.rejects(services.start(intake.config({ dogstatsdPort: port })), (err) => {
      assert.equal(err.code, 'ERR_DOGSTATSD_START');
      assert.match(err.message, /^Failed to start DogStatsD: .*Address already in use/);
      return true;
    });
    assert.equal(services.isRunning(), false);
  } finally {
    blocker.close();
  }
  await services.start(intake.config());
  assert.equal(services.isRunning(), true);
});

test('a taken trace agent port: ERR_TRACE_AGENT_START', async () => {
  const blocker = net.createServer();
  await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  try {
    await assert.rejects(services.start(intake.config({ apmReceiverPort: blocker.address().port })), (err) => {
      assert.equal(err.code, 'ERR_TRACE_AGENT_START');
      assert.match(err.message, /^Failed to start trace agent: /);
      return true;
    });
    assert.equal(services.isRunning(), false);
  } finally {
    blocker.close();
  }
});

test('two instances in one process, each with its own ports and data', async () => {
  const a = new DatadogServices();
  const b = new DatadogServices();
  await Promise.all([a.start(intake.config({ tags: ['instance:a'] })), b.start(intake.config({ tags: ['instance:b'] }))]);
  try {
    assert.notEqual(a.ports.dogstatsd, b.ports.dogstatsd);
    await sendStatsd(a.ports.dogstatsd, 'two.instances:1|c');
    await sendStatsd(b.ports.dogstatsd, 'two.instances:2|c');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  const series = await intake.waitForSeries('two.instances', 'instance:b');
  assert.equal(series.length, 1);
  assert.ok((await intake.series()).some((s) => s.metric === 'two.instances' && s.tags.includes('instance:a')));
});

test('useDogstatsd false / useTraceAgent false: only the other service runs', async () => {
  const statuses = [];
  await services.start(intake.config({ useDogstatsd: false }), (s) => statuses.push(s));
  assert.equal(services.ports.dogstatsd, 0);
  assert.ok(services.ports.traceAgent > 0);
  await services.stop();
  await services.start(intake.config({ useTraceAgent: false }));
  assert.equal(services.ports.traceAgent, 0);
  assert.ok(services.ports.dogstatsd > 0);
  await services.stop();
  assert.deepEqual(statuses.filter((s) => s.type === 'ready').map((s) => s.service), ['trace-agent']);
});

test('an exception thrown by the status callback surfaces as an uncaught exception, not a crash', async () => {
  const out = await runNode(path.join(__dirname, 'fixtures', 'callback-throws.js'), [], { env: intake.env() });
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout), { uncaught: 'boom from the callback', runningAfter: true });
});
