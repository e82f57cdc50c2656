import type { ApiContext } from './api.js';
import type { Route } from './server.js';

/** GET /events (newline-delimited JSON event stream). */
export function eventsRoutes(_ctx: ApiContext): Route[] {
  return [];
}
