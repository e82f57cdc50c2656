import type { ApiContext } from './api.js';
import type { Route } from './server.js';

/** GET /metrics (Prometheus). */
export function metricsRoutes(_ctx: ApiContext): Route[] {
  return [];
}
