'use strict';
// HTTPS from libcurl (the services sending to a TLS intake) and from Node's own https, in one
// process. Inside Node, libcurl's OpenSSL calls bind to the OpenSSL that Node embeds
// (TOOLCHAIN.md): both must keep working side by side, before, during and after.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const https = require('node:https');

const { Intake, REPO, sendStatsd } = require('./helpers/intake');

const { services } = require(REPO);

let intake;
test.before(async () => {
  intake = await Intake.start({ tls: true });
});
test.after(async () => {
  if (services.isRunning()) await services.stop();
  await intake.stop();
});

function nodeHttpsHealth() {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: intake.port, path: '/_control/health', ca: intake.certs.ca, timeout: 10000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
    });
    req.on('timeout', () => req.destroy(new Error('https request timed out')));
    req.on('error', reject);
  });
}

test('libcurl and Node https both reach a local TLS server from the same process', async () => {
  const before = await nodeHttpsHealth();
  assert.equal(before.status, 200);
  assert.equal(before.body.tls, true);

  await services.start(intake.config({ tlsVerify: false }));
  for (let round = 0; round < 3; round++) {
    await sendStatsd(services.ports.dogstatsd, `tls.metric:${round + 1}|g|#round:${round}`);
    // libcurl's flush and Node's requests overlap.
    const [, ...answers] = await Promise.all([services.flush(), nodeHttpsHealth(), nodeHttpsHealth(), nodeHttpsHealth()]);
    for (const answer of answers) assert.equal(answer.status, 200);
    assert.ok(crypto.createHash('sha256').update('still fine').digest('hex').length === 64);
  }
  await services.stop();

  const series = (await intake.series()).filter((s) => s.metric === 'tls.metric');
  assert.equal(series.length, 3);
  const records = await intake.records('/api/v2/series');
  assert.ok(records.every((r) => r.status === 202), JSON.stringify(records.map((r) => r.status)));
  assert.equal(services.stats().payloadsDropped, 0);

  const after = await nodeHttpsHealth();
  assert.equal(after.status, 200);
  assert.equal(after.body.tls_handshake_failures, 0);
});

test('with tlsVerify left on, libcurl refuses the untrusted certificate (and Node still trusts its CA)', async () => {
  await services.start(intake.config({ requestTimeoutMs: 2000 }));
  await intake.reset();
  await sendStatsd(services.ports.dogstatsd, 'tls.refused:1|g');
  await services.stop(1500).catch(() => {});
  assert.deepEqual((await intake.series()).filter((s) => s.metric === 'tls.refused'), []);
  const ok = await nodeHttpsHealth();
  assert.equal(ok.status, 200);
  assert.ok(ok.body.tls_handshake_failures >= 1, JSON.stringify(ok.body));
});

test('logs reach an additional endpoint given as { apiKey, host, port } over verified TLS, with its own key', async () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dds-ca-')), 'ca.pem');
  fs.writeFileSync(caFile, intake.certs.ca);
  await intake.reset();
  await services.start(intake.config({
    useDogstatsd: false,
    useTraceAgent: false,
    tlsCaPath: caFile,
    logsEnabled: true,
    logsPort: 0,
    logsDdUrl: intake.url,
    logsAdditionalEndpoints: [{ apiKey: 'second-key-0123456789abcdef', host: '127.0.0.1', port: intake.port }],
  }));
  const body = JSON.stringify([{ message: 'to both', timestamp: Date.now() }]);
  const answer = await fetch(`http://127.0.0.1:${services.ports.logsAgent}/v1/input`, { method: 'POST', body });
  assert.equal(answer.status, 200);
  await services.flush();
  await services.stop();
  const records = (await intake.records('/api/v2/logs')).filter((r) => r.status === 202);
  const keys = records.map((r) => r.api_key).sort();
  assert.deepEqual(keys, ['second-key-0123456789abcdef', 'test-key-0123456789abcdef'], JSON.stringify(records));
  for (const r of records) {
    assert.equal(r.headers['dd-protocol'], 'agent-json');
    assert.deepEqual(r.payload.map((e) => e.message), ['to both']);
  }
});
