import { loadConfig } from '../config/index.js';
import { createLogger, describeError, type Logger } from '../internal/index.js';
import { LiteFSNode } from '../node.js';
import { parseCommandArgs } from './args.js';
import { exitCodeOf, forwardSignals, startChild } from './child.js';
import type { Command } from './commands.js';

const USAGE = `usage: litefs mount [-config PATH] [-no-expand-env] [-skip-unmount] [-fuse.debug] [-debug] [-- CMD [ARGS...]]

Mounts the LiteFS filesystem described by the config file and serves it in
the foreground until SIGINT or SIGTERM, then unmounts cleanly. SIGHUP
re-reads the config file's http.token and the http.tls files (rotation
without a restart: open connections finish, new ones use the new ones).

With exec entries in the config, or a command after --, the application is
started once this node is ready (primary, or a replica caught up with the
primary): every entry but the last must exit 0 first (migrations); the last
runs for as long as the mount does, receives SIGINT/SIGTERM, and its exit
code becomes litefs's.

  -config PATH      config file (default: ./litefs.yml, ~/litefs.yml, /etc/litefs.yml)
  -no-expand-env    do not expand \${VAR} references in the config
  -skip-unmount     fail instead of clearing a stale mount at fuse.dir
  -fuse.debug       log every FUSE request
  -debug            debug logging
`;

export const mountCommand: Command = async (argv) => {
  const args = parseCommandArgs(
    'mount',
    USAGE,
    argv,
    {
      config: { type: 'string' },
      'no-expand-env': { type: 'boolean', default: false },
      'skip-unmount': { type: 'boolean', default: false },
      'fuse.debug': { type: 'boolean', default: false },
      debug: { type: 'boolean', default: false },
    },
    {
      allowPositionals: true,
      check: (a) => {
        if (a.positionals.length > 0 && !argv.includes('--')) throw new Error(`unexpected argument ${a.positionals[0]!}`);
      },
    },
  );
  if (typeof args === 'number') return args;
  const config = await loadConfig(args.values.config ?? null, { expandEnv: !args.values['no-expand-env'] });
  const logger = createLogger({
    level: args.values.debug || config.log.debug ? 'debug' : config.log.level,
    format: config.log.format,
    timestamp: config.log.timestamp,
  });
  const daemon = new LiteFSNode({
    config,
    logger,
    skipUnmount: args.values['skip-unmount'],
    fuseDebug: args.values['fuse.debug'] || config.fuse.debug,
  });
  // Installed before start: SIGHUP's default action would end the process.
  const stopReloading = reloadOnSighup(daemon, config.source, !args.values['no-expand-env'], logger);
  try {
    await daemon.start();
  } catch (err) {
    logger.error({ err }, `startup failed: ${describeError(err)}`);
    await daemon.stop();
    process.stderr.write(`litefs mount: ${describeError(err)}\n`);
    if (!config.exitOnError) {
      // exit-on-error: false keeps the process around for inspection.
      logger.info('exit-on-error is false: staying up until SIGINT/SIGTERM');
      await waitForSignal();
    }
    stopReloading();
    logger.flush();
    return 1;
  }
  const stop = new AbortController();
  const signalled = waitForSignal().then((sig) => {
    stop.abort();
    return sig;
  });
  const commands: ExecCommand[] =
    args.positionals.length > 0
      ? [{ cmd: args.positionals }]
      : config.exec.filter((e) => !e.ifCandidate || config.lease.candidate).map((e) => ({ cmd: e.cmd }));
  let code = 0;
  if (commands.length === 0) {
    logger.info({ signal: await signalled }, 'shutting down');
  } else {
    code = await runExec(daemon, commands, config.skipSync, stop.signal, logger);
    if (stop.signal.aborted) logger.info('shutting down after the application stopped');
  }
  await daemon.stop();
  stopReloading();
  logger.info('stopped');
  logger.flush();
  return code;
};

interface ExecCommand {
  cmd: string | string[];
}

/**
 * LiteFS's exec: wait until the node is ready, run every command but the
 * last to completion (stopping at the first failure), then supervise the
 * last one. Returns the exit code litefs should exit with.
 */
async function runExec(daemon: LiteFSNode, commands: ExecCommand[], skipSync: boolean, signal: AbortSignal, log: Logger): Promise<number> {
  if (!skipSync) {
    log.info('waiting until this node is ready before starting the application');
    if (!(await daemon.waitReady(signal))) return 0;
  }
  for (const [i, c] of commands.entries()) {
    const last = i === commands.length - 1;
    log.info({ cmd: c.cmd }, last ? 'starting the application' : 'running');
    const child = startChild(c.cmd);
    const stopForwarding = forwardSignals(child);
    const code = await exitCodeOf(child);
    stopForwarding();
    if (last) {
      log.info({ code }, 'the application exited');
      return code;
    }
    if (code !== 0) {
      log.error({ cmd: c.cmd, code }, 'exec command failed; not starting the rest');
      return code;
    }
    if (signal.aborted) return 0;
  }
  return 0;
}

/**
 * On SIGHUP, reads the config file again and hands its http section to
 * the node; other changed keys need a restart. Reloads run one at a time.
 */
function reloadOnSighup(daemon: LiteFSNode, source: string, expandEnv: boolean, log: Logger): () => void {
  let running = Promise.resolve();
  const onHup = (): void => {
    running = running.then(async () => {
      try {
        const next = await loadConfig(source, { expandEnv });
        await daemon.reload(next);
      } catch (err) {
        log.error({ err: describeError(err) }, 'SIGHUP: reload failed; kept the current token and certificates');
      }
    });
  };
  process.on('SIGHUP', onHup);
  return () => process.off('SIGHUP', onHup);
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
