'use strict';
// SIGTERM under load through the Node binding (issue 7): a child embedding the services is flooded
// over UDP and gets SIGTERM mid-flood; every line its services counted as accepted must reach the
// fake intake (50 counters incremented by 1: the sum of the points x 10 is the accepted count).
const test = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const { spawn } = require('node:child_process');
const path = require('node:path');

const { Intake, sleep } = require('./helpers/intake');

let intake;
test.before(async () => {
  intake = await Intake.start();
});
test.after(async () => {
  await intake.stop();
});

test('SIGTERM during a UDP flood: everything accepted reaches the intake', async () => {
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'sigterm-load.js')], {
    env: intake.env(), stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { err += c; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  for (let i = 0; i < 500 && !/ready \d+/.test(out); i++) await sleep(10);
  const port = Number(/ready (\d+)/.exec(out)?.[1]);
  assert.ok(port, `the child did not start: ${err}`);

  const socket = dgram.createSocket('udp4');
  const datagrams = Array.from({ length: 50 }, (_, i) =>
    Buffer.from(Array.from({ length: 20 }, (_, j) => `nodeload.c${(i + j) % 50}:1|c`).join('\n')));
  let flooding = true;
  let sent = 0;
  const flood = (async () => {
    while (flooding) {
      await new Promise((resolve) => socket.send(datagrams[sent % 50], port, '127.0.0.1', resolve));
      sent++;
      if (sent % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  await sleep(1500);
  child.kill('SIGTERM');            // mid-flood
  const outcome = await exited;
  flooding = false;
  await flood;
  socket.close();
  assert.equal(outcome.code, 0, err);
  const stats = JSON.parse(out.trim().split('\n').pop());
  assert.ok(stats.dsdMetricLines > 1000, JSON.stringify(stats));
  const series = (await intake.series()).filter((s) => s.metric.startsWith('nodeload.c'));
  const delivered = series.reduce((n, s) => n + s.points.reduce((m, [, v]) => m + Math.round(v * 10), 0), 0);
  assert.equal(delivered, stats.dsdMetricLines, `sent ${sent * 20} lines`);
});
