/**
 * The node's HTTP side: the API server (/info, /promote, /handoff,
 * /import, /export, /metrics, /events), the replication stream's server
 * and client, and the proxy in front of an application. Other modules
 * import only from here.
 */
export { ApiServer } from './server.js';
export type { ApiServerOptions, Route } from './server.js';
export { apiRoutes, nodeInfo } from './api.js';
export type { ApiContext, NodeInfo } from './api.js';
export { StreamServer } from './stream-server.js';
export type { StreamServerOptions } from './stream-server.js';
export { runReplicaStream, ReplicaStreamError } from './stream-client.js';
export type { ReplicaStreamOptions, StreamEnd, ReplicaStreamErrorCode } from './stream-client.js';
export { NodeSecurity, AuthError, explainConnectError, nodeAgent, announceSecurity } from './auth/index.js';
export type { SecuritySettings, AuthErrorCode } from './auth/index.js';
export { NodeProxyBackend } from './proxy-backend.js';
export { createProxyServer } from './proxy/index.js';
export type { ProxyServer } from './proxy/index.js';
export { POS_HEADER } from './transfer.js';
