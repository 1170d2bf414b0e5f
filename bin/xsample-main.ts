// The sampler itself, loaded by the launcher (bin/xsample.ts) once its threads run at a low priority.
import { main } from '../sampler/cli/cli.ts';

// `xsample ... | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

process.exitCode = await main(process.argv.slice(2));
