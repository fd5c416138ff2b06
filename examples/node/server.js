'use strict';
// A plain http server traced by dd-trace and sending metrics with hot-shots, both talking to the
// services embedded in this process (no agent, no sidecar). Configured by DD_* variables; PORT
// is the HTTP port (default 3000). Stop it with Ctrl-C or SIGTERM: the cleanup hook flushes
// everything, then the process ends as it would without the hook.
//   node examples/node/server.js & curl localhost:3000/hello; kill %1
const { services } = require('@datadog/serverless-node');

async function main() {
  services.registerCleanupHook();
  await services.start();  // resolves once 127.0.0.1:8125 (UDP) and :8126 (HTTP) are bound

  // dd-trace first, then the modules it instruments (http here).
  const tracer = require('dd-trace').init({
    url: `http://127.0.0.1:${services.ports.traceAgent}`,  // runtime metrics go there too
    runtimeMetrics: true,
    startupLogs: false,
  });
  const http = require('node:http');
  const StatsD = require('hot-shots');
  const statsd = new StatsD({ host: '127.0.0.1', port: services.ports.dogstatsd });

  const server = http.createServer((req, res) => {
    statsd.increment('example.requests', 1, { path: req.url });
    tracer.trace('example.render', { resource: req.url }, () => {
      res.setHeader('content-type', 'text/plain');
      res.end(`hello from ${req.url}\n`);
    });
  });
  server.listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
