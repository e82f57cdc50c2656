#!/usr/bin/env node
/** Entry point of the `litefs` command. */
const { main } = await import('./commands.js');
process.exitCode = await main(process.argv.slice(2));
