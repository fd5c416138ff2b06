'use strict';
// Every ```js run block of README.md and docs/*.md is a complete program: written to a folder of
// the repository (so that require('@datadog/serverless-node') resolves to this package), run with
// node against the fake intake (ports 0, every intake URL at the fake intake, loopback only) in
// bounded time, and must exit 0 and deliver something. tests/py/test_doc_examples.py runs the
// python, c and sh blocks the same way and shares the fence convention.
const test = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const { Intake, REPO, runNode, waitUntil } = require('./helpers/intake');

function markdownFiles() {
  const docs = path.join(REPO, 'docs');
  return [path.join(REPO, 'README.md'),
    ...fs.readdirSync(docs).filter((f) => f.endsWith('.md')).sort().map((f) => path.join(docs, f))];
}

function runnableBlocks(lang) {
  const blocks = [];
  for (const file of markdownFiles()) {
    const text = fs.readFileSync(file, 'utf8');
    const fence = /^(```+)([^\n`]*)\n([\s\S]*?)^\1[ \t]*$/gm;
    for (let m; (m = fence.exec(text));) {
      const info = m[2].trim().split(/\s+/);
      if (info[0] === lang && info.slice(1).includes('run')) {
        blocks.push({ id: `${path.basename(file)}:${text.slice(0, m.index).split('\n').length}`, code: m[3] });
      }
    }
  }
  return blocks;
}

// "Before" examples spawn datadog-serverless-compat from PATH, as the wrappers spawn theirs: the
// C build's binary or the Python package's console script, whichever exists.
const PATH = [path.join(REPO, 'build-c'), path.join(REPO, '.venv', 'bin'), process.env.PATH].join(path.delimiter);

function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.on('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

let intake;
let work;
test.before(async () => {
  intake = await Intake.start();
  work = fs.mkdtempSync(path.join(REPO, 'build-doc-examples-'));  // /build-*/ is git-ignored
});
test.after(async () => {
  await intake.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

test('the docs hold js programs', () => {
  assert.ok(runnableBlocks('js').length >= 2, 'no ```js run block found: the scan is broken');
});

const compat = [path.join(REPO, 'build-c', 'datadog-serverless-compat'), path.join(REPO, '.venv', 'bin', 'datadog-serverless-compat')]
  .find((f) => fs.existsSync(f));

for (const block of runnableBlocks('js')) {
  test(`${block.id} runs`, async (t) => {
    if (block.code.includes("spawn('datadog-serverless-compat'") && !compat) {
      t.skip('no datadog-serverless-compat to spawn: scripts/build build-c (scripts/test builds it first)');
      return;
    }
    await intake.reset();
    const file = path.join(work, `${block.id.replace(/[^\w]/g, '_')}.js`);
    fs.writeFileSync(file, block.code);
    // Fixed free ports rather than 0: the "before" examples send to DD_DOGSTATSD_PORT and poll
    // DD_APM_RECEIVER_PORT, since a spawned binary cannot tell them which ports it got.
    const env = intake.env({ PATH, DD_LOGS_CONFIG_LOGS_DD_URL: intake.url, DD_LOGS_PORT: '0',
      DD_DOGSTATSD_PORT: String(await freeUdpPort()), DD_APM_RECEIVER_PORT: String(await freeTcpPort()) });
    const out = await runNode(file, [], { env, timeoutMs: 60000 });
    assert.equal(out.code, 0, `${block.id} exited ${out.code}\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}`);
    await waitUntil(`a payload from ${block.id}`, async () => (await intake.records()).length > 0, 10000);
  });
}
