/** Errors from talking to agents, with a stable code and whether a retry may help. */
export type AgentErrorCode = 'ORCH_AGENT_UNREACHABLE' | 'ORCH_AGENT_REFUSED' | 'ORCH_NO_AGENT' | 'ORCH_POOL_EXHAUSTED';

export class AgentError extends Error {
  override readonly name = 'AgentError';
  readonly retryable: boolean;
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options: { cause?: unknown; retryable: boolean },
  ) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable;
  }
}
