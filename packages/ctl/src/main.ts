#!/usr/bin/env node
import { CommanderError } from 'commander';
import { buildProgram } from './cli.js';
import { CtlError } from './errors.js';

/**
 * Exit with `code` once stdout and stderr have handed everything written to
 * them to the OS: a pipe takes 64 KiB at a time, and process.exit() at once
 * would cut `orchestratorctl --json events | cat` there. A reader that went
 * away (EPIPE, `| head`) ends it too.
 */
function exitAfterOutput(code: number): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  for (const stream of [process.stdout, process.stderr]) {
    stream.once('error', () => process.exit(code));
    // Written in order: this empty write's callback runs after all before it are flushed.
    stream.write('', done);
  }
}

/** `orchestratorctl COMMAND`: errors end as one line on stderr (exit 1, or 2 for usage). */
const program = buildProgram({
  out: (text) => void process.stdout.write(`${text}\n`),
  err: (text) => void process.stderr.write(`${text}\n`),
});
program.exitOverride();

program.parseAsync(process.argv).then(
  () => exitAfterOutput(0),
  (error: unknown) => {
    if (error instanceof CommanderError) return exitAfterOutput(error.exitCode);
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`orchestratorctl: ${message}\n`);
    exitAfterOutput(error instanceof CtlError ? error.exitCode : 1);
  },
);
