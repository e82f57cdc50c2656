import type { ApiContext } from './api.js';
import type { Route } from './server.js';

/** POST /import and GET /export. */
export function transferRoutes(_ctx: ApiContext): Route[] {
  return [];
}
