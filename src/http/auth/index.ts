/**
 * Who may use a node's API: the shared bearer token, TLS and mutual TLS,
 * for the server and for every client that dials another node.
 */
export { NodeSecurity } from './security.js';
export type { SecuritySettings } from './material.js';
export { TokenCheck, bearer } from './token.js';
export type { Refusal } from './token.js';
export { AuthError } from './errors.js';
export type { AuthErrorCode } from './errors.js';
export { explainConnectError } from './explain.js';
export { nodeAgent } from './agent.js';
export { LogThrottle } from './throttle.js';
export { announceSecurity, isLoopbackHost } from './announce.js';
