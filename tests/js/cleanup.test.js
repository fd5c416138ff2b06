'use strict';
// registerCleanupHook() and the exit behaviour: the design's auto-cleanup on 'beforeExit'; a
// script that starts the services and ends delivers its data and exits 0 (20 runs, no hang);
// SIGTERM/SIGINT flush and keep their usual outcome; the services keep the process alive only
// with keepAlive; a worker thread that is terminated stops its services.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const { Intake, REPO, runNode, waitUntil } = require('./helpers/intake');

const { services } = require(REPO);
const fixture = (name) => path.join(__dirname, 'fixtures', name);

let intake;
test.before(async () => {
  intake = await Intake.start();
});
test.after(async () => {
  await intake.stop();
});

test('should auto-cleanup on exit: beforeExit stops the services', async () => {
  // The design's test body runs in a child: see the fixture.
  const out = await runNode(fixture('before-exit.js'), [], { env: intake.env({ DD_API_KEY: '' }) });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /cleaned up/);
});

test('registerCleanupHook twice adds no second set of handlers', () => {
  const counts = () => ['beforeExit', 'SIGTERM', 'SIGINT'].map((e) => process.listenerCount(e));
  services.registerCleanupHook();
  const before = counts();
  services.registerCleanupHook();
  assert.deepEqual(counts(), before);
});

test('a script that starts the services and ends without stop: data arrives, exit 0, no hang (20 runs)', async () => {
  const modes = ['natural', 'hook', 'exit'];
  const slowest = { ms: 0 };
  for (let i = 0; i < 20; i++) {
    const mode = modes[i % modes.length];
    const id = `end-${i}`;
    const out = await runNode(fixture('end-without-stop.js'), [id, mode], { env: intake.env(), timeoutMs: 15000 });
    assert.equal(out.code, 0, `run ${i} (${mode}): ${out.stderr}`);
    assert.equal(out.signal, null);
    if (out.ms > slowest.ms) Object.assign(slowest, { ms: out.ms, mode });
    const [series] = await intake.waitForSeries('cleanup.run', `run:${id}`, 5000);
    assert.ok(series.tags.includes(`mode:${mode}`));
  }
  assert.ok(slowest.ms < 5000, `slowest run took ${slowest.ms} ms (${slowest.mode})`);
});

// Runs the signal fixture, waits for "ready", sends the signal; resolves the child's outcome.
function signalChild(signal, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture('signal.js'), ...args], { env: intake.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sentAt = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit in 15 s: ${stdout} ${stderr}`));
    }, 15000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (!sentAt && stdout.includes('ready')) {
        sentAt = Date.now();
        child.kill(signal);
      }
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, stdout, stderr, ms: Date.now() - sentAt });
    });
  });
}

// What Node does with an unhandled signal: the process is killed by it (a shell shows 128 + n).
async function plainNodeOutcome(signal) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000); console.log("ready")'], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.once('data', () => child.kill(signal));
    child.on('close', (code, sig) => resolve({ code, signal: sig }));
  });
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`${signal}: the final flush arrives and the process ends as Node ends on an unhandled ${signal}`, async () => {
    const id = `${signal}-default`;
    const out = await signalChild(signal, [id]);
    assert.deepEqual({ code: out.code, signal: out.signal }, await plainNodeOutcome(signal), out.stderr);
    assert.deepEqual({ code: out.code, signal: out.signal }, { code: null, signal });
    assert.match(out.stdout, /^ready 1 1$/m, 'one SIGTERM and one SIGINT listener after two registrations');
    assert.ok(out.ms < 5000, `took ${out.ms} ms`);
    await intake.waitForSeries('signal.run', `run:${id}`, 5000);
  });
}

test('SIGTERM with a listener of the application: flushed, and the application decides the outcome', async () => {
  const id = 'SIGTERM-own';
  const out = await signalChild('SIGTERM', [id, 'own-listener']);
  assert.deepEqual({ code: out.code, signal: out.signal }, { code: 7, signal: null }, out.stderr);
  await intake.waitForSeries('signal.run', `run:${id}`, 5000);
});

test('the services do not keep the process alive, unless keepAlive: true', async () => {
  const env = intake.env();
  const loose = await runNode(fixture('keepalive.js'), ['false'], { env, timeoutMs: 15000 });
  assert.equal(loose.code, 0, loose.stderr);
  const looseResult = JSON.parse(loose.stdout);
  assert.equal(looseResult.how, 'exit hook');
  assert.ok(looseResult.ms < 800, `ended after ${looseResult.ms} ms`);

  const held = await runNode(fixture('keepalive.js'), ['true'], { env, timeoutMs: 15000 });
  assert.equal(held.code, 0, held.stderr);
  const heldResult = JSON.parse(held.stdout);
  assert.equal(heldResult.how, 'timer');
  assert.ok(heldResult.ms >= 800, `ended after ${heldResult.ms} ms`);
});

test('a worker thread that is terminated stops (and flushes) its services', async () => {
  const out = await runNode(fixture('worker.js'), ['w1'], { env: intake.env(), timeoutMs: 15000 });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /terminated/);
  await waitUntil('the worker metric', async () => (await intake.series()).some((s) => s.metric === 'worker.run' && s.tags.includes('run:w1')), 5000);
});
