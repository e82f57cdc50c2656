import type { Command } from './commands.js';

// Placeholder until the LTX codec lands (issue 2).
export const ltxCommand: Command = async () => {
  process.stderr.write('litefs ltx: not built yet\n');
  return 1;
};
