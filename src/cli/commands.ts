import { describeError } from '../internal/index.js';
import { VERSION } from './version.js';

/** A subcommand: receives its own arguments, returns the process exit code. */
export type Command = (argv: string[]) => Promise<number>;

interface CommandEntry {
  summary: string;
  load: () => Promise<Command>;
}

// Each command lives in its own module and is loaded only when used, so
// `litefs ltx dump` does not pay for FUSE, HTTP or Consul code.
const commands: Record<string, CommandEntry> = {
  version: { summary: 'print the version', load: async () => version },
  demo: {
    summary: 'run a local three-node cluster on loopback',
    load: async () => (await import('./demo.js')).demoCommand,
  },
  mount: {
    summary: 'mount the LiteFS filesystem and serve it in the foreground',
    load: async () => (await import('./mount.js')).mountCommand,
  },
  status: {
    summary: "show this node's role, primary, lag and database positions",
    load: async () => (await import('./status.js')).statusCommand,
  },
  run: {
    summary: 'run a command once the node is ready, passing signals on',
    load: async () => (await import('./run.js')).runCommand,
  },
  ltx: {
    summary: 'inspect, verify and apply LTX files',
    load: async () => (await import('./ltx.js')).ltxCommand,
  },
  import: {
    summary: 'replace a database on the primary with a SQLite file',
    load: async () => (await import('./import.js')).importCommand,
  },
  export: {
    summary: 'write a consistent copy of a database to a file',
    load: async () => (await import('./export.js')).exportCommand,
  },
};

async function version(): Promise<number> {
  process.stdout.write(`litefs-ts ${VERSION}\n`);
  return 0;
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: litefs <command> [arguments]\n\ncommands:\n${lines.join('\n')}\n\nRun "litefs <command> --help" for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') return version();
  const entry = commands[name];
  if (entry === undefined) {
    process.stderr.write(`litefs: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  try {
    const cmd = await entry.load();
    return await cmd(rest);
  } catch (err) {
    process.stderr.write(`litefs ${name}: ${describeError(err)}\n`);
    return 1;
  }
}
