'use strict';
// The options object of start(): a camelCase option for every field of the C config, converted
// without loss (70000 reaches the C validation, it is not truncated), the C library's messages
// passed through, unknown keys refused, DD_* variables as the fallback for options left out.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Intake, REPO, sendStatsd } = require('./helpers/intake');

const { services } = require(REPO);
const binding = require(path.join(REPO, 'node_addon', 'binding.js'));

// Every dds_config field of src_c/include/datadog_serverless.h, in its order, with its default.
const DEFAULTS = {
  apiKey: null, site: 'datadoghq.com', ddUrl: null, httpsProxy: null, tlsCaPath: null, tlsVerify: true, dryRun: false,
  dryRunFd: 1,
  logLevel: 'info', tags: null, env: null, service: null, version: null,
  useDogstatsd: true, dogstatsdPort: 8125, dogstatsdSocket: null, dogstatsdNonLocalTraffic: false,
  dogstatsdBufferSize: 8192, dogstatsdSoRcvbuf: 0, dogstatsdQueueBytes: 4194304, metricNamespace: null, contextLimit: 100000,
  counterExpirySeconds: 300, histogramAggregates: 'max,median,avg,count', histogramPercentiles: '0.95',
  clientTelemetry: true, flushIntervalMs: 10000,
  useTraceAgent: true, apmReceiverPort: 8126, apmReceiverSocket: null, apmNonLocalTraffic: false, apmDdUrl: null,
  apmProfilingDdUrl: null, apmTelemetryDdUrl: null, evpProxyDdUrl: null, apmMaxRequestBytes: 26214400,
  apmRemoveQueryString: false, apmObfuscateCreditCards: true,
  apmRemovePathsWithDigits: false, apmObfuscateRedis: true, apmRedisRemoveAllArgs: false, apmObfuscateValkey: true, apmValkeyRemoveAllArgs: false, apmObfuscateMemcached: true, apmMemcachedKeepCommand: false, apmRemoveStackTraces: false, apmObfuscationCacheEnabled: true, apmObfuscationCacheMaxSize: 2097152, apmReplaceTags: null,
  agentStatsComputationEnabled: false,
  logsEnabled: false, logsPort: 10517, logsNonLocalTraffic: false, logsDdUrl: null, logsUseCompression: true,
  logsCompressionLevel: 3, logsMaxQueuedBytes: 8388608, logsOpwEnabled: false, logsOpwUrl: null,
  logsAdditionalEndpoints: null, enhancedMetricsEnabled: true,
  requestTimeoutMs: 20000, retryQueueMaxBytes: 15728640, sendQueueMaxBytes: 33554432,
};

let intake;
const savedEnv = { ...process.env };
test.before(async () => {
  intake = await Intake.start();
});
test.after(async () => {
  await intake.stop();
});
test.afterEach(async () => {
  if (services.isRunning()) await services.stop();
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
});

async function startError(config, callback) {
  const err = await services.start(config, callback).then(() => null, (e) => e);
  assert.ok(err instanceof Error, `start(${JSON.stringify(config)}) should reject`);
  assert.equal(services.isRunning(), false);
  return err;
}

test('every field of the C config has its camelCase option, and all of them together start', async () => {
  assert.deepEqual([...binding.configKeys], Object.keys(DEFAULTS));
  await services.start({ ...DEFAULTS, ...intake.config() });
  assert.equal(services.isRunning(), true);
});

test('a dogstatsdPort of 70000 reaches the C validation and is reported, not truncated', async () => {
  const err = await startError(intake.config({ dogstatsdPort: 70000 }));
  assert.equal(err.code, 'ERR_INVALID_CONFIG');
  assert.equal(err.message, 'Invalid configuration: dogstatsd_port must be 0-65535, got 70000');
  assert.match(err.stack.split('\n')[1], /config\.test\.js/, err.stack);
});

test('the C library validates: its messages name the field, the value and what is allowed', async () => {
  const cases = [
    [{ apmReceiverPort: -1 }, 'Invalid configuration: apm_receiver_port must be 0-65535, got -1'],
    [{ site: 'example .com' }, /^Invalid configuration: site must be a Datadog site .*got 'example .com'$/],
    [{ ddUrl: 'ftp://x' }, "Invalid configuration: dd_url must be an http:// or https:// URL, got 'ftp://x'"],
    [{ httpsProxy: 'proxy:3128' }, /^Invalid configuration: https_proxy must be an http/],
    [{ tlsCaPath: '/no/such/ca.pem' },
      "Invalid configuration: tls_ca_path must be a readable PEM file or directory, got '/no/such/ca.pem' (No such file or directory)"],
    [{ metricNamespace: '9lives' }, /^Invalid configuration: metric_namespace must start with a letter/],
    [{ dogstatsdBufferSize: 100 }, 'Invalid configuration: dogstatsd_buffer_size must be 512-65536, got 100'],
    [{ histogramAggregates: ['max', 'p99'] }, /^Invalid configuration: histogram_aggregates .*got 'p99'$/],
    [{ histogramPercentiles: [0.5, 1.5] }, /^Invalid configuration: histogram_percentiles .*got '1.5'$/],
    [{ flushIntervalMs: 5 }, 'Invalid configuration: flush_interval_ms must be 100-3600000, got 5'],
    [{ requestTimeoutMs: 1 }, 'Invalid configuration: request_timeout_ms must be at least 100, got 1'],
    [{ logsPort: 70000 }, 'Invalid configuration: logs_port must be 0-65535, got 70000'],
    [{ logsCompressionLevel: 22 }, 'Invalid configuration: logs_compression_level must be 1-19, got 22'],
    [{ logsDdUrl: 'ftp://x' }, "Invalid configuration: logs_dd_url must be an http:// or https:// URL or host:port, got 'ftp://x'"],
    [{ logsEnabled: true, logsPort: 0, logsOpwEnabled: true },
      'Invalid configuration: logs_opw_url (DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL) must be set when logs_opw_enabled is true'],
    [{ logsAdditionalEndpoints: [{ apiKey: 'secret-js-key', port: 443 }] },
      'Invalid configuration: logs_additional_endpoints (DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS) is not valid: endpoint 0: Host is missing'],
    [{ logsAdditionalEndpoints: '[{"api_key":"secret-js-key","Host":"h",}]' },
      /^Invalid configuration: logs_additional_endpoints \(DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS\) is not valid: invalid JSON at byte \d+/],
    [{ sendQueueMaxBytes: 10 }, 'Invalid configuration: send_queue_max_bytes must be at least 1024, got 10'],
  ];
  for (const [bad, message] of cases) {
    const err = await startError(intake.config(bad));
    assert.equal(err.code, 'ERR_INVALID_CONFIG', JSON.stringify(bad));
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
  }
});

test('values the C field cannot hold are refused by name, never truncated or wrapped', async () => {
  const cases = [
    [{ dogstatsdPort: 1e10 }, 'Invalid configuration: dogstatsdPort must be an integer (a 32-bit one), got 10000000000'],
    [{ dogstatsdPort: 8125.5 }, 'Invalid configuration: dogstatsdPort must be an integer (a 32-bit one), got 8125.5'],
    [{ dogstatsdPort: '8125' }, "Invalid configuration: dogstatsdPort must be an integer (a 32-bit one), got '8125'"],
    [{ dogstatsdPort: NaN }, 'Invalid configuration: dogstatsdPort must be an integer (a 32-bit one), got NaN'],
    [{ contextLimit: -1 }, 'Invalid configuration: contextLimit must be an integer in 0-4294967295, got -1'],
    [{ retryQueueMaxBytes: 2 ** 32 }, 'Invalid configuration: retryQueueMaxBytes must be an integer in 0-4294967295, got 4294967296'],
    [{ apiKey: 12345 }, 'Invalid configuration: apiKey must be a string or null, got 12345'],
    [{ apiKey: 'abc\u0000def' }, "Invalid configuration: apiKey must be free of NUL characters, got 'abc"],
    [{ useDogstatsd: 'yes' }, "Invalid configuration: useDogstatsd must be true or false, got 'yes'"],
    [{ tlsVerify: 1 }, 'Invalid configuration: tlsVerify must be true or false, got 1'],
    [{ tags: { a: 1 } }, 'Invalid configuration: tags must be a string, an array of strings or null, got an object'],
    [{ tags: ['ok:1', null] }, 'Invalid configuration: tags must be a string, an array of strings or null, got null'],
    [{ logLevel: 'verbose' }, "Invalid configuration: logLevel must be one of trace|debug|info|warn|error|off, got 'verbose'"],
    [{ dryRunFd: 'stdout' }, "Invalid configuration: dryRunFd must be an integer (a 32-bit one), got 'stdout'"],
    [{ logsAdditionalEndpoints: 5 }, 'Invalid configuration: logsAdditionalEndpoints must be a JSON string, an array of objects or null, got 5'],
  ];
  for (const [bad, message] of cases) {
    const err = await startError(intake.config(bad));
    assert.equal(err.code, 'ERR_INVALID_CONFIG', JSON.stringify(bad));
    assert.ok(err.message.startsWith(message), `${err.message}\n  expected to start with\n${message}`);
  }
});

test('unknown options are refused, with the likely intended name', async () => {
  let err = await startError({ ...intake.config(), dogstatsdport: 0 });
  assert.equal(err.code, 'ERR_INVALID_CONFIG');
  assert.equal(err.message, "Invalid configuration: unknown option 'dogstatsdport' (did you mean 'dogstatsdPort'?)");
  err = await startError({ ...intake.config(), api_key: 'x' });
  assert.equal(err.message, "Invalid configuration: unknown option 'api_key' (did you mean 'apiKey'?)");
  err = await startError({ ...intake.config(), colour: 'blue' });
  assert.equal(err.message, "Invalid configuration: unknown option 'colour'");
});

test('the configuration must be an object; the status callback a function', async () => {
  let err = await startError('datadoghq.com');
  assert.equal(err.code, 'ERR_INVALID_CONFIG');
  assert.equal(err.message, "Invalid configuration: the configuration must be an object, got 'datadoghq.com'");
  err = await startError([]);
  assert.equal(err.code, 'ERR_INVALID_CONFIG');
  err = await startError(intake.config(), 'not a function');
  assert.ok(err instanceof TypeError);
  assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
  err = await startError(intake.config({ keepAlive: 'yes' }));
  assert.equal(err.message, "Invalid configuration: keepAlive must be true or false, got 'yes'");
  err = await startError(intake.config({ logger: console }));
  assert.match(err.message, /^Invalid configuration: logger must be a function/);
});

test('options left out fall back to the DD_* environment, as the CLI reads it', async () => {
  process.env.DD_API_KEY = 'key-from-env-0123456789';
  process.env.DD_DD_URL = intake.url;
  process.env.DD_DOGSTATSD_PORT = '0';
  process.env.DD_APM_ENABLED = 'false';
  process.env.DD_STATSD_METRIC_NAMESPACE = 'fromenv';
  process.env.DD_TAGS = 'origin:env';
  await services.start();
  assert.equal(services.ports.traceAgent, 0, 'DD_APM_ENABLED=false was read');
  await sendStatsd(services.ports.dogstatsd, 'envmetric:1|g');
  await services.stop();
  const [series] = await intake.waitForSeries('fromenv.envmetric', 'origin:env');
  assert.equal(series.points[0][1], 1);
  const keys = (await intake.records('/api/v2/series')).map((r) => r.api_key);
  assert.ok(keys.includes('key-from-env-0123456789'));
});

test('an option wins over its variable; null unsets a string the environment set', async () => {
  process.env.DD_DOGSTATSD_PORT = '70000';
  process.env.DD_STATSD_METRIC_NAMESPACE = 'bad namespace!';
  process.env.DD_TAGS = 'origin:env';
  await services.start(intake.config({ metricNamespace: null, tags: ['origin:option', 'case:override'] }));
  await sendStatsd(services.ports.dogstatsd, 'override.metric:1|g');
  await services.stop();
  const [series] = await intake.waitForSeries('override.metric', 'case:override');
  assert.ok(series.tags.includes('origin:option') && !series.tags.includes('origin:env'), series.tags.join());
});

test('an environment variable that cannot be read is an ERR_INVALID_CONFIG naming it', async () => {
  process.env.DD_DOGSTATSD_PORT = 'abc';
  let err = await startError({ apmReceiverPort: 0 });
  assert.equal(err.code, 'ERR_INVALID_CONFIG');
  assert.match(err.message, /^Invalid configuration: DD_DOGSTATSD_PORT must be an integer/);
  process.env.DD_DOGSTATSD_PORT = '70000';
  err = await startError({ apmReceiverPort: 0 });
  assert.equal(err.message, 'Invalid configuration: dogstatsd_port must be 0-65535, got 70000');
});

test('lists as arrays, unified service tags, namespace and percentiles reach the series', async () => {
  await services.start(intake.config({
    tags: ['team:core', 'case:lists'], env: 'test', service: 'cfg-svc', version: '1.2.3',
    metricNamespace: 'ns', histogramAggregates: ['max', 'count'], histogramPercentiles: [0.5, 0.99], logLevel: 'WARN',
  }));
  await sendStatsd(services.ports.dogstatsd, ['lat:10|h', 'lat:20|h']);
  await services.stop();
  await intake.waitForSeries('ns.lat.count', 'case:lists');
  const names = (await intake.series()).filter((s) => s.tags.includes('case:lists')).map((s) => s.metric).sort();
  assert.deepEqual(names, ['ns.lat.50percentile', 'ns.lat.99percentile', 'ns.lat.count', 'ns.lat.max']);
  const tags = (await intake.series()).find((s) => s.tags.includes('case:lists')).tags;
  for (const tag of ['team:core', 'env:test', 'service:cfg-svc', 'version:1.2.3']) assert.ok(tags.includes(tag), tags.join());
});

test('dryRun writes each payload as a JSON line to dryRunFd instead of sending it', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dds-dry-')), 'out.jsonl');
  const fd = fs.openSync(file, 'w');
  try {
    await services.start(intake.config({ dryRun: true, dryRunFd: fd }));
    await sendStatsd(services.ports.dogstatsd, 'dry.metric:1|c|#case:dry');
    await services.stop();
  } finally {
    fs.closeSync(fd);
  }
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.dry_run === true && JSON.stringify(l.payload).includes('dry.metric')), JSON.stringify(lines));
  assert.ok(services.stats().dryRunPayloads >= 1);
  assert.ok(!(await intake.series()).some((s) => s.metric === 'dry.metric'), 'nothing was sent');
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('the logger option receives the C log lines with their level; the log level filters them', async () => {
  const lines = [];
  await services.start(intake.config({ logLevel: 'info', logger: (level, message) => lines.push([level, message]) }));
  await services.stop();
  const listening = lines.find(([, m]) => m.startsWith('DogStatsD listening on 127.0.0.1:'));
  assert.ok(listening, JSON.stringify(lines));
  assert.equal(listening[0], 'info');
  assert.ok(!lines.some(([, m]) => m.includes('test-key-0123456789abcdef')), 'the API key is never logged');

  const quiet = [];
  await services.start(intake.config({ logLevel: 'error', logger: (level, message) => quiet.push([level, message]) }));
  await services.stop();
  assert.deepEqual(quiet, []);
});

test('the configuration object is read once, at start: changing it later changes nothing', async () => {
  const config = intake.config({ tags: 'case:snapshot' });
  const started = services.start(config);
  config.tags = 'case:changed';
  await started;
  await sendStatsd(services.ports.dogstatsd, 'snap:1|g');
  await services.stop();
  await intake.waitForSeries('snap', 'case:snapshot');
});
