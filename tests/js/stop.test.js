'use strict';
// stop(): the design's cases (stop when not running, multiple stops, stop within the timeout)
// and what stop promises: what was received before it is flushed, the Promise settles once the
// work is done (after the 'stopped' event), a stalled intake cannot hold it past its timeout.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { Intake, REPO, sendStatsd } = require('./helpers/intake');

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

test('stop when not running rejects with ERR_NOT_RUNNING, pointing at the caller', async () => {
  const fresh = new DatadogServices();
  const err = await fresh.stop().then(() => null, (e) => e);
  assert.ok(err instanceof Error);
  assert.equal(err.code, 'ERR_NOT_RUNNING');
  assert.equal(err.message, 'Services not running');
  assert.match(err.stack.split('\n')[1], new RegExp(path.basename(__filename)), err.stack);
});

test('multiple stops: the second one resolves at once, so do concurrent ones', async () => {
  await services.start(intake.config());
  await services.stop();
  const t0 = Date.now();
  await services.stop();
  assert.ok(Date.now() - t0 < 500);

  await services.start(intake.config());
  await Promise.all([services.stop(), services.stop(), services.stop()]);
  assert.equal(services.isRunning(), false);
});

test('stop flushes what was received before it (open buckets included) and settles after the stopped event', async () => {
  const events = [];
  await services.start(intake.config({ tags: 'case:final-flush' }), (s) => events.push(s.type));
  await sendStatsd(services.ports.dogstatsd, ['stop.final:3|c', 'stop.gauge:42|g']);
  await services.stop();
  assert.equal(events.at(-1), 'stopped', 'the stopped event came before the Promise settled');
  const stats = services.stats();
  assert.equal(stats.dsdMetricLines, 2);
  assert.ok(stats.payloadsSent >= 1);
  const [gauge] = await intake.waitForSeries('stop.gauge', 'case:final-flush');
  assert.equal(gauge.points[0][1], 42);
  const [count] = await intake.waitForSeries('stop.final', 'case:final-flush');
  assert.equal(count.type, 'rate');
});

test('stop within the timeout: a healthy stop takes well under the 5 s default', async () => {
  await services.start(intake.config());
  await sendStatsd(services.ports.dogstatsd, 'stop.quick:1|c');
  const t0 = Date.now();
  await services.stop();
  assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
});

test('stop within the timeout: a stalled intake makes stop reject with ERR_SHUTDOWN_TIMEOUT, bounded', async () => {
  await intake.fail({ path: '/api/v2/series', delay_ms: 8000, status: 503, count: -1 });
  await services.start(intake.config());
  await sendStatsd(services.ports.dogstatsd, 'stop.stalled:1|c');
  const t0 = Date.now();
  const err = await services.stop(300).then(() => null, (e) => e);
  const took = Date.now() - t0;
  assert.ok(err, 'stop rejected');
  assert.equal(err.code, 'ERR_SHUTDOWN_TIMEOUT');
  assert.match(err.message, /^Shutdown timeout exceeded/);
  assert.ok(took < 3500, `took ${took} ms`);
  assert.equal(services.isRunning(), false);
  assert.ok(services.stats().payloadsDropped >= 1);
});

test('start after stop works, and stats() still reads the stopped instance', async () => {
  await services.start(intake.config());
  await sendStatsd(services.ports.dogstatsd, ['a:1|c', 'b:1|c', 'c:1|c']);
  await services.stop();
  assert.equal(services.stats().dsdMetricLines, 3);
  await services.start(intake.config());
  assert.equal(services.isRunning(), true);
  assert.equal(services.stats().dsdMetricLines, 0, 'a new instance counts from zero');
});

test('stop does not block the event loop while it waits for the intake', async () => {
  await intake.fail({ path: '/api/v2/series', delay_ms: 600, count: 1 });
  await services.start(intake.config());
  await sendStatsd(services.ports.dogstatsd, 'stop.loop:1|c');
  let ticks = 0;
  const timer = setInterval(() => {
    ticks++;
  }, 10);
  const t0 = Date.now();
  await services.stop();
  clearInterval(timer);
  assert.ok(Date.now() - t0 >= 500, 'the stop waited for the slow intake');
  assert.ok(ticks >= 20, `only ${ticks} timer ticks during the stop`);
});
