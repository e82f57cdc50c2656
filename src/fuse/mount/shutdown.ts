import { describeError, silentLogger, type Logger } from '../../internal/index.js';
import { activeMounts, unmountAll } from './registry.js';

export interface ShutdownOptions {
  /** Default SIGINT and SIGTERM. */
  signals?: NodeJS.Signals[];
  /** Also unmount on uncaughtException / unhandledRejection, then exit 1. Default true. */
  uncaught?: boolean;
  /** Time allowed for unmounting before exiting anyway. Default 5000 ms. */
  timeoutMs?: number;
  logger?: Logger;
  /** Runs before the mounts are unmounted (e.g. stop accepting work). */
  beforeUnmount?: (reason: string) => Promise<void> | void;
}

/**
 * Opt-in process handlers for a daemon: on SIGINT/SIGTERM unmount every
 * mount this process serves and then die of the same signal; on an
 * uncaught error log it, unmount, and exit 1. Returns a function that
 * removes the handlers.
 */
export function installShutdownHandlers(opts: ShutdownOptions = {}): () => void {
  const logger = opts.logger ?? silentLogger;
  const signals = opts.signals ?? ['SIGINT', 'SIGTERM'];
  const timeoutMs = opts.timeoutMs ?? 5000;
  let shuttingDown = false;

  const shutdown = async (reason: string): Promise<void> => {
    try {
      await opts.beforeUnmount?.(reason);
    } catch (err) {
      logger.error({ err }, 'fuse: shutdown hook failed');
    }
    const n = activeMounts().length;
    if (n > 0) logger.info({ mounts: n, reason }, 'fuse: unmounting before exit');
    await Promise.race([unmountAll(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    void shutdown(signal).finally(() => {
      uninstall();
      // Die of the signal itself so the parent sees the usual status.
      process.kill(process.pid, signal);
    });
  };

  const onUncaught = (err: unknown): void => {
    logger.error({ err }, `fuse: uncaught error: ${describeError(err)}`);
    if (shuttingDown) return;
    shuttingDown = true;
    void shutdown('uncaught error').finally(() => process.exit(1));
  };

  for (const s of signals) process.on(s, onSignal);
  if (opts.uncaught ?? true) {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
  }

  function uninstall(): void {
    for (const s of signals) process.off(s, onSignal);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  }
  return uninstall;
}
