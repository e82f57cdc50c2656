import type { ApiContext } from './api.js';
import { createMetricsRegistry } from './metrics-registry.js';
import type { Route } from './server.js';

/** GET /metrics: Prometheus text exposition of this node's own registry. */
export function metricsRoutes(ctx: ApiContext): Route[] {
  const registry = createMetricsRegistry(ctx);
  return [
    {
      method: 'GET',
      path: '/metrics',
      handler: async (_req, res) => {
        const text = await registry.metrics();
        res.statusCode = 200;
        res.setHeader('Content-Type', registry.contentType);
        res.end(text);
      },
    },
  ];
}
