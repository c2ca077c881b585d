#!/usr/bin/env node
import { CommanderError } from 'commander';
import { buildProgram } from './cli.js';
import { CtlError } from './errors.js';

/** `orchestratorctl COMMAND`: errors end as one line on stderr (exit 1, or 2 for usage). */
const program = buildProgram({
  out: (text) => void process.stdout.write(`${text}\n`),
  err: (text) => void process.stderr.write(`${text}\n`),
});
program.exitOverride();

program.parseAsync(process.argv).then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`orchestratorctl: ${message}\n`);
    process.exit(error instanceof CtlError ? error.exitCode : 1);
  },
);
