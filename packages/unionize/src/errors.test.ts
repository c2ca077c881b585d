import { ApiError } from '@unionize/protocol';
import { describe, expect, it } from 'vitest';
import { AttachError, DockerError, ERROR_STATUS, UnionizeError, type ErrorCode } from './errors.js';

describe('error catalogue', () => {
  it.each(Object.entries(ERROR_STATUS) as [ErrorCode, number][])('%s answers %i', (code, status) => {
    const error = new UnionizeError(code, 'why');
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
    expect(error.message).toBe('why');
  });

  it('keeps the cause and Docker status', () => {
    const cause = new Error('socket hang up');
    const docker = new DockerError('docker create x: socket hang up', undefined, { cause });
    expect(docker.status).toBe(502);
    expect(docker.code).toBe('DOCKER_ERROR');
    expect(docker.cause).toBe(cause);
    const attach = new AttachError('ip: RTNETLINK answers: File exists');
    expect(attach.status).toBe(500);
    expect(attach.code).toBe('ATTACH_FAILED');
  });
});
