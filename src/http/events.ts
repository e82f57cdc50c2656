import http2 from 'node:http2';
import type { ApiContext } from './api.js';
import { eventHubFor } from './event-hub.js';
import type { ApiResponse, Route } from './server.js';

/**
 * GET /events: newline-delimited JSON, one event per line, each written
 * (and so flushed) as it happens. Works over HTTP/1.1 (chunked) and h2c.
 */
export function eventsRoutes(ctx: ApiContext): Route[] {
  const hub = eventHubFor(ctx);
  return [
    {
      method: 'GET',
      path: '/events',
      handler: async (_req, res) => {
        // A client already gone would never send the 'close' the hub waits for.
        if (gone(res)) return;
        res.statusCode = 200;
        res.setHeader('Content-Type', 'application/json');
        await hub.serve(res, () => abort(res));
      },
    },
  ];
}

/**
 * Cuts a subscriber off so it can tell it was dropped rather than ended:
 * HTTP/2 resets the stream with CANCEL (a reset without an error code
 * would only surface after the client read everything buffered), HTTP/1.1
 * closes the connection mid-body.
 */
function abort(res: ApiResponse): void {
  if (res instanceof http2.Http2ServerResponse) res.stream.close(http2.constants.NGHTTP2_CANCEL);
  else res.destroy();
}

function gone(res: ApiResponse): boolean {
  return res instanceof http2.Http2ServerResponse ? res.stream.destroyed || res.stream.closed : res.destroyed;
}
