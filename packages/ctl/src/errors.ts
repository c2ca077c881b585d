/** A failure the operator can act on: printed as one line, `orchestratorctl: MESSAGE`, exit code 1 (2 for usage). */
export class CtlError extends Error {
  override readonly name = 'CtlError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
