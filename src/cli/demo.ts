import type { Command } from './commands.js';

// Until the mount and replication land, the demo reports what is built.
export const demoCommand: Command = async () => {
  process.stdout.write(
    [
      'litefs-ts demo: the three-node cluster demo needs the FUSE mount and replication,',
      'which are not built yet. What exists today:',
      '  litefs version',
      '',
    ].join('\n'),
  );
  return 0;
};
