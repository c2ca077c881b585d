import { CommandError, type Command, type CommandRunner } from './run-command.js';

/**
 * Start-up check that an external tool the attach runs is there: `command`
 * (a harmless call such as `--version`) must start; any exit code counts as
 * "it ran". Throws an Error whose message is the one line to print, naming
 * what the tool is for and the Debian package that has it, so a host without
 * it stops at start instead of failing (or, for a best-effort step, silently
 * doing without) on its first container.
 */
export async function checkTool(run: CommandRunner, command: Command, what: string): Promise<void> {
  try {
    await run(command);
  } catch (error) {
    if (error instanceof CommandError && error.exitCode !== null) return;
    throw new Error(`${command.file}: not usable (${what}): ${(error as Error).message}`);
  }
}
