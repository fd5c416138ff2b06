'use strict';
// A serverless function handler (AWS Lambda's shape) that embeds the services: start them once
// per cold start, send metrics with hot-shots, and flush before returning, because the platform
// may freeze the process as soon as the handler's Promise settles.
//
// Configuration comes from the function's environment (DD_API_KEY, DD_SITE, ...), as for the
// Datadog extension. Try it locally (without DD_API_KEY: dry-run, payloads printed as JSON):
//   node examples/node/handler.js
const StatsD = require('hot-shots');
const { services } = require('@datadog/serverless-node');

services.registerCleanupHook();  // a final flush on SIGTERM, when the platform shuts the function down

// Once per cold start. Not awaited here: the first invocation waits for it.
const started = services.start({}, (status) => {
  if (status.type === 'error') console.error(`datadog: ${status.message}`);
});
let statsd;

exports.handler = async (event) => {
  await started;
  statsd ??= new StatsD({ host: '127.0.0.1', port: services.ports.dogstatsd, globalTags: { handler: 'orders' } });

  const t0 = Date.now();
  const items = Array.isArray(event && event.items) ? event.items : [];
  await new Promise((resolve) => statsd.increment('orders.received', 1, { channel: 'api' }, resolve));
  await new Promise((resolve) => statsd.histogram('orders.items', items.length, resolve));
  await new Promise((resolve) => statsd.distribution('orders.handler.duration_ms', Date.now() - t0, resolve));

  await services.flush();  // everything is at Datadog before the function is frozen
  return { statusCode: 200, body: JSON.stringify({ accepted: items.length }) };
};

if (require.main === module) {
  exports.handler({ items: ['book', 'pen'] }).then((result) => {
    console.log(result);
    statsd.close();
  });
}
