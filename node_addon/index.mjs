// ESM entry point: the same objects as the CommonJS one (one addon, one `services` singleton,
// whichever way the package is loaded).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const api = require('./index.js');

export const { DatadogServices, services, version } = api;
export default api;
