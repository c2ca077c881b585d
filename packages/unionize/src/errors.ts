import { ApiError } from '@unionize/protocol';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * unionize's error catalogue: every error the API can answer with, its stable
 * code and its status. The shared error handler renders them as
 * `{ error: { code, message } }`.
 */
export const ERROR_STATUS = {
  /** Body or path parameter failed validation. */
  INVALID_REQUEST: 400,
  /** No managed container of that name. */
  NOT_FOUND: 404,
  /** A container of that name exists but unionize does not manage it: never touched. */
  NAME_CONFLICT: 409,
  /** The managed container of that name was made with another image, MAC or address. */
  CONTAINER_MISMATCH: 409,
  /** The container is paused, restarting, being removed or dead: it cannot be started as is. */
  CONTAINER_STATE: 409,
  /** The request came from an orchestrator whose leadership epoch is older than one already seen: it was deposed. */
  DEPOSED: 409,
  /** Creating, starting, inspecting or removing through the Docker Engine API failed. */
  DOCKER_ERROR: 502,
  /** The veth/address/route could not be set up, or the container changed under us. */
  ATTACH_FAILED: 500,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class UnionizeError extends ApiError {
  constructor(
    override readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(ERROR_STATUS[code], code, message, options);
  }
}

/** A Docker Engine API call failed; `dockerStatus` is Docker's own HTTP status when it answered. */
export class DockerError extends UnionizeError {
  constructor(
    message: string,
    readonly dockerStatus: number | undefined,
    options?: { cause?: unknown },
  ) {
    super('DOCKER_ERROR', message, options);
  }
}

export class AttachError extends UnionizeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ATTACH_FAILED', message, options);
  }
}
