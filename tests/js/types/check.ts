// Compile-only test of node_addon/index.d.ts (tsc --noEmit, run by types.test.js): what users
// write must type-check, and the mistakes below must not (@ts-expect-error fails when they do).
import defaultExport, { DatadogServices, services, version } from '@datadog/serverless-node';
import type { ServiceStatus, ServicesConfig, ServicesError, ServicesStats } from '@datadog/serverless-node';

async function main(): Promise<void> {
  services.registerCleanupHook();
  const config: ServicesConfig = {
    apiKey: 'key', site: 'datadoghq.com', dogstatsdPort: 8125, useDogstatsd: true, metricNamespace: 'app',
    logLevel: 'info', httpsProxy: null, tlsCaPath: null, tags: ['team:core'], histogramPercentiles: [0.95, '0.99'], keepAlive: false,
    logger: (level, message) => console.log(level, message),
  };
  await services.start(config, (status: ServiceStatus) => {
    if (status.type === 'error') console.error(`Service ${status.service} error: ${status.message}`);
  });
  await services.flush();
  await services.flush(2000);
  const running: boolean = services.isRunning();
  const port: number = services.ports.dogstatsd + services.ports.traceAgent;
  const stats: ServicesStats = services.stats();
  const sent: number = stats.seriesSent;
  await services.stop();
  await new DatadogServices().start();
  const v: string = version;
  const same: DatadogServices = defaultExport.services;
  try {
    await services.start({});
  } catch (err) {
    const code = (err as ServicesError).code;
    if (code === 'ERR_ALREADY_STARTED') console.log(running, port, sent, v, same);
  }

  // @ts-expect-error: an unknown option
  await services.start({ dogstatsdport: 8125 });
  // @ts-expect-error: a port is a number
  await services.start({ dogstatsdPort: '8125' });
  // @ts-expect-error: status types are fixed
  const bad: ServiceStatus = { type: 'starting' };
  // @ts-expect-error: ports is read-only
  services.ports = { dogstatsd: 1, traceAgent: 2 };
  console.log(bad);
}

void main();
